"""emollm.evaluation."""

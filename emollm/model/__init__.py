"""emollm.model."""

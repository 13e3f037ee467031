"""emollm.bench."""

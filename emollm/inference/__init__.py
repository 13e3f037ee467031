"""emollm.inference."""

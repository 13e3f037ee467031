"""Training: recipes (config), deterministic batching, engines (accelerate DDP, FSDP2, DeepSpeed), the trainer."""

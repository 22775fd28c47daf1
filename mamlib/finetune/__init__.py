"""Fine-tuning (Sec. 4.2, Table 5): the tasks' losses, the one Accelerate training loop, resumable checkpoints."""

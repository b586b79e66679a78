"""Training: stages, optimizers, checkpoints, metrics and sample pictures of a run directory."""

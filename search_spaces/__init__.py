"""Built-in search spaces; `nas spaces` lists them. Each samples (ArchSpec, TrainConfig)."""

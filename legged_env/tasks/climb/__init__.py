"""Obstacle tracks: climb up and jump down boxes (task, config, curriculum)."""

"""Batched env core: State, PD control, decimation, auto-reset, rewards and observations by name."""

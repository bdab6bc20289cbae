"""The policy's AMP transitions of one rollout, kept beside the :class:`~st_rl.storage.rollout_storage.RolloutStorage`,
and a replay buffer of those of past rollouts (:class:`AmpReplayBuffer`).

Shapes: ``T = num_transitions_per_env`` (time), ``N = num_envs``, ``D = amp_obs_dim``; ``states`` and
``next_states`` are ``[T, N, D]``: step ``t`` of env ``n`` went from ``states[t, n]`` to ``next_states[t, n]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class AmpRolloutStorage:
    """Fixed-size buffer of the ``(s, s')`` AMP transitions of a rollout, one pair per env and step."""

    def __init__(
        self, num_envs: int, num_transitions_per_env: int, amp_obs_dim: int, device: str | torch.device = "cpu"
    ) -> None:
        self.device = torch.device(device)
        self.num_envs = num_envs
        self.num_transitions_per_env = num_transitions_per_env
        self.amp_obs_dim = amp_obs_dim
        shape = (num_transitions_per_env, num_envs, amp_obs_dim)
        self.states = torch.zeros(shape, device=self.device)
        self.next_states = torch.zeros(shape, device=self.device)
        self.step = 0

    def add(self, states: torch.Tensor, next_states: torch.Tensor) -> None:
        """Store one step of every env: ``states``, ``next_states`` ``(N, D)``."""
        if self.step >= self.num_transitions_per_env:
            raise OverflowError("AMP rollout storage is full; call clear() before adding more transitions")
        expected = (self.num_envs, self.amp_obs_dim)
        for name, x in (("states", states), ("next_states", next_states)):
            if tuple(x.shape) != expected:
                raise ValueError(f"AMP {name} of shape {tuple(x.shape)}, expected (num_envs, amp_obs_dim) {expected}")
        self.states[self.step].copy_(states)
        self.next_states[self.step].copy_(next_states)
        self.step += 1

    def clear(self) -> None:
        """Start a new rollout (old data is overwritten)."""
        self.step = 0

    def mini_batch_size(self, num_mini_batches: int) -> int:
        """``T * N // num_mini_batches``: the size of each mini-batch (as PPO's feed-forward mini-batches)."""
        size = self.num_transitions_per_env * self.num_envs // num_mini_batches
        if size == 0:
            raise ValueError(
                f"num_mini_batches={num_mini_batches} exceeds the {self.num_transitions_per_env * self.num_envs} "
                "AMP transitions in the rollout"
            )
        return size

    def mini_batch_generator(
        self, num_mini_batches: int, num_epochs: int = 1
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``num_epochs * num_mini_batches`` shuffled ``(s, s')`` mini-batches, each ``(B, D)`` with
        ``B = T * N // num_mini_batches`` (the same count as PPO's mini-batches, so the two can be zipped, also
        beside the recurrent generator, which yields ``num_mini_batches`` batches of whole envs per epoch)."""
        mini_batch_size = self.mini_batch_size(num_mini_batches)
        states, next_states = self.states.flatten(0, 1), self.next_states.flatten(0, 1)
        for _ in range(num_epochs):
            indices = torch.randperm(states.shape[0], device=self.device)
            for i in range(num_mini_batches):
                idx = indices[i * mini_batch_size : (i + 1) * mini_batch_size]
                yield states[idx], next_states[idx]


class AmpReplayBuffer:
    """FIFO buffer of the policy's past ``(s, s')`` AMP transitions (at most ``capacity``), for the discriminator.

    The discriminator only sees the current policy's transitions otherwise, and forgets what earlier policies did
    (so the policy can drift back to motion the discriminator once rejected); AMP implementations mix such past
    transitions into the policy side of its batches. ``states`` / ``next_states`` are ``[capacity, D]``; the first
    ``size`` rows are filled.
    """

    def __init__(self, capacity: int, amp_obs_dim: int, device: str | torch.device = "cpu") -> None:
        if capacity <= 0:
            raise ValueError(f"AMP replay buffer capacity={capacity} must be > 0")
        self.device = torch.device(device)
        self.capacity = capacity
        self.states = torch.zeros(capacity, amp_obs_dim, device=self.device)
        self.next_states = torch.zeros(capacity, amp_obs_dim, device=self.device)
        self.size = 0
        self._next = 0  # the row the next insert writes first (the oldest once full)

    def insert(self, states: torch.Tensor, next_states: torch.Tensor) -> None:
        """Append transitions ``states``, ``next_states`` ``(M, D)``, overwriting the oldest once full (with
        ``M > capacity`` only the last ``capacity`` are kept)."""
        states, next_states = states[-self.capacity :], next_states[-self.capacity :]
        idx = (self._next + torch.arange(states.shape[0], device=self.device)) % self.capacity
        self.states[idx] = states.to(self.device)
        self.next_states[idx] = next_states.to(self.device)
        self._next = (self._next + states.shape[0]) % self.capacity
        self.size = min(self.capacity, self.size + states.shape[0])

    def sample(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` transitions drawn uniformly (with replacement) from the filled rows, each
        ``(batch_size, D)``; the buffer must not be empty."""
        if self.size == 0:
            raise ValueError("AMP replay buffer is empty")
        idx = torch.randint(self.size, (batch_size,), device=self.device)
        return self.states[idx], self.next_states[idx]

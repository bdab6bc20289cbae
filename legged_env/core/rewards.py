"""Reward terms by name: one pure function per name, one scale per name, scales multiplied by dt here."""

from collections.abc import Callable

import jax.numpy as jnp

from legged_env.errors import ConfigError


class RewardTerms:
    """The active reward terms of a task.

    Args:
        functions: name -> ``fn(quantities: dict, cfg: dict) -> ()`` for every reward the task knows.
        scales: name -> scale from the config; zero scales are dropped, a name without a
            function is a :class:`ConfigError`.
        dt: policy step (s); every scale is multiplied by it once, here.
        cfg: reward parameters passed to every function (sigmas, targets...).
        where: config path for error messages.
    """

    def __init__(self, functions: dict[str, Callable], scales: dict, dt: float, cfg: dict, where: str):
        unknown = sorted(set(scales) - set(functions))
        if unknown:
            raise ConfigError(
                f"reward scale '{unknown[0]}' in {where} has no reward function (valid: {', '.join(sorted(functions))})"
            )
        for name, scale in scales.items():
            if isinstance(scale, bool) or not isinstance(scale, (int, float)):
                raise ConfigError(f"reward scale '{name}' in {where} must be a number, got {scale!r}")
        self.names = [name for name, scale in scales.items() if scale != 0.0]
        self.scales = {name: float(scales[name]) * dt for name in self.names}
        self.functions = {name: functions[name] for name in self.names}
        self.cfg = cfg

    def __call__(self, quantities: dict) -> dict[str, jnp.ndarray]:
        """Returns name -> scaled reward ``()`` of every active term."""
        return {name: self.functions[name](quantities, self.cfg) * self.scales[name] for name in self.names}

    def total(self, terms: dict[str, jnp.ndarray], only_positive: bool) -> jnp.ndarray:
        """Sum of the terms; with ``only_positive`` the sum is clipped at 0 before the termination
        term is added (legged_gym's rule, so early training is not pushed towards dying)."""
        body = sum((v for k, v in terms.items() if k != "termination"), jnp.zeros(()))
        if only_positive:
            body = jnp.maximum(body, 0.0)
        return body + terms.get("termination", jnp.zeros(()))

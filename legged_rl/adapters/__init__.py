"""Our envs behind other learners' env interfaces (each needs its optional extra; imported on first use).

* :class:`~legged_rl.adapters.rsl_rl_env.RslRlVecEnv`: rsl-rl-lib's ``rsl_rl.env.VecEnv`` (extra ``rsl_rl``), so
  ``rsl_rl.runners.OnPolicyRunner`` trains on our tasks unchanged.
* :class:`~legged_rl.adapters.torchrl_env.TorchRLEnv`: a TorchRL ``EnvBase`` (extra ``torchrl``).

Both read the observations as the named groups of :mod:`legged_rl.obs_groups`.
"""

from __future__ import annotations

import importlib


def import_extra(module: str, package: str, extra: str, user: str):
    """``module`` of an optional extra; missing, an ImportError of one line naming what to install (other import
    errors, e.g. inside the package, pass unchanged)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != module.split(".")[0]:
            raise
        raise ImportError(f'{user} needs {package}: pip install -e ".[{extra}]"') from None


_LAZY = {"RslRlVecEnv": "legged_rl.adapters.rsl_rl_env", "TorchRLEnv": "legged_rl.adapters.torchrl_env"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""legged_env: batched legged-robot environments in JAX + MuJoCo-MJX.

Tasks are pure functions over a :class:`legged_env.core.state.State` pytree, vmapped over
envs and jitted once. :mod:`legged_env.torch_vec_env` exposes a task to the PyTorch learner
(``st_rl``) through the ``st_rl.env.VecEnv`` contract.
"""

import contextlib
import sys

# mujoco.mjx prints notes about its optional Warp backend to stdout on import; send them to stderr so
# the scripts' stdout stays clean (benchmark.py and play.py print JSON there).
with contextlib.redirect_stdout(sys.stderr):
    import mujoco.mjx  # noqa: F401

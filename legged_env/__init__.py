"""legged_env: batched legged-robot environments in JAX + MuJoCo-MJX.

Tasks are pure functions over a :class:`legged_env.core.state.State` pytree, vmapped over
envs and jitted once. :mod:`legged_env.torch_vec_env` exposes a task to the PyTorch learner
(``st_rl``) through the ``st_rl.env.VecEnv`` contract.
"""

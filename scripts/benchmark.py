"""Throughput benchmark, printed as one JSON object: python scripts/benchmark.py --task=walk.

Reports env-steps/s through the torch VecEnv with random actions at each ``--sizes`` num_envs, the
jit compile seconds of the batched step (cold: a fresh, empty compilation cache), and one PPO
iteration's collection and learning seconds at ``--ppo_envs`` envs. Not a test: numbers depend on
the machine; compare ratios measured in the same run.
"""

import json
import os
import platform
import tempfile

from legged_env import cli


def main(args) -> int:
    sizes = [int(s) for s in args.sizes.split(",")]
    # A fresh cache directory makes the first compile a cold one, and leaves the user's cache alone.
    os.environ["LEGGED_ENV_JAX_CACHE"] = tempfile.mkdtemp(prefix="legged_env_bench_cache_")
    spec, cfg, source = cli.load_config(args)

    import jax
    import torch

    from legged_env.benchmark import time_env_steps, time_first_step, time_ppo_iterations
    from st_rl.runners import OnPolicyRunner

    def env_with(n: int):
        return cli.make_env(spec, {**cfg["env"], "num_envs": n}, 0, args.device, source)

    result = {
        "task": spec.name,
        "device": args.device,
        "jax_backend": jax.default_backend(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    env, result["jit_compile_s"] = time_first_step(lambda: env_with(sizes[0]))
    result["jit_compile_num_envs"] = sizes[0]
    rates = {}
    for n in sizes:
        env = env if env.num_envs == n else env_with(n)
        rates[str(n)] = round(time_env_steps(env, args.steps, args.repeats))
    result["env_steps_per_s"] = rates
    env = env_with(args.ppo_envs)
    # No log_dir and no learn(): nothing is written.
    runner = OnPolicyRunner(env, {k: cfg[k] for k in cli.TRAIN_SECTIONS}, None, args.device, source)
    ppo = time_ppo_iterations(runner, args.ppo_iterations)
    result["ppo_iteration"] = {"num_envs": args.ppo_envs, **{k: round(v, 3) for k, v in ppo.items()}}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    parser = cli.base_parser(__doc__)
    parser.add_argument("--sizes", default="256,1024,4096", help="comma-separated num_envs to time")
    parser.add_argument("--steps", type=int, default=50, help="env steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per size (the median is reported)")
    parser.add_argument("--ppo_envs", type=int, default=1024, help="num_envs of the PPO iteration timing")
    parser.add_argument("--ppo_iterations", type=int, default=3, help="PPO iterations timed (median reported)")
    cli.run_main(main, parser)

"""Throughput measurements behind scripts/benchmark.py (medians of repeated timings)."""

import statistics
import time

import jax
import torch
import torch.distributed

from legged_env.torch_vec_env import TorchVecEnv


def time_env_steps(env: TorchVecEnv, steps: int, repeats: int, seed: int = 0) -> float:
    """Median env-steps/s of ``repeats`` runs of ``steps`` random-action steps through the torch VecEnv."""
    gen = torch.Generator().manual_seed(seed)
    actions = [torch.randn(env.num_envs, env.num_actions, generator=gen) for _ in range(8)]
    env.step(actions[0])  # compile outside the timing
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(steps):
            obs, *_ = env.step(actions[i % len(actions)])
        jax.block_until_ready(env.state.obs)
        rates.append(env.num_envs * steps / (time.perf_counter() - start))
    return statistics.median(rates)


def time_first_step(make_env) -> tuple[TorchVecEnv, float]:
    """Builds an env with ``make_env()`` and returns it with the seconds to its first step (tracing + compiling)."""
    start = time.perf_counter()
    env = make_env()
    env.step(torch.zeros(env.num_envs, env.num_actions))
    jax.block_until_ready(env.state.obs)
    return env, time.perf_counter() - start


def time_ppo_iterations(runner, iterations: int) -> dict:
    """Median collection and learning seconds of ``iterations`` PPO iterations of an OnPolicyRunner."""
    collection, learning = [], []
    runner.alg.policy.train()
    for _ in range(iterations):
        start = time.perf_counter()
        runner._collect_rollout()
        mid = time.perf_counter()
        runner.alg.update()
        collection.append(mid - start)
        learning.append(time.perf_counter() - mid)
    return {
        "collection_s": statistics.median(collection),
        "learning_s": statistics.median(learning),
        "steps_per_iteration": runner.runner_cfg.num_steps_per_env * runner.env.num_envs,
    }


def time_ranks(env: TorchVecEnv, runner, dist, steps: int, repeats: int, iterations: int) -> dict:
    """One rank's share of a multi-process measurement, combined over ranks (every rank gets the result).

    ``env_steps_per_s``: the ranks' random-action rates summed (they step at the same time, after a
    barrier); ``ppo_iteration``: the slowest rank's median collection and learning seconds (the update
    waits for it), over all ranks' envs.
    """
    for _ in range(2):  # the first two steps compile (as time_first_step + the warm-up step of time_env_steps)
        env.step(torch.zeros(env.num_envs, env.num_actions))
    jax.block_until_ready(env.state.obs)
    torch.distributed.barrier()
    rate = time_env_steps(env, steps, repeats, seed=dist.rank)
    torch.distributed.barrier()
    ppo = time_ppo_iterations(runner, iterations)
    gathered = dist.gather_objects({"rate": rate, **ppo})
    collection = max(g["collection_s"] for g in gathered)
    learning = max(g["learning_s"] for g in gathered)
    steps_per_iteration = sum(g["steps_per_iteration"] for g in gathered)
    return {
        "nproc": dist.world_size,
        "num_envs": env.num_envs * dist.world_size,
        "num_envs_per_rank": env.num_envs,
        "env_steps_per_s": round(sum(g["rate"] for g in gathered)),
        "ppo_iteration": {
            "collection_s": round(collection, 3),
            "learning_s": round(learning, 3),
            "steps_per_iteration": steps_per_iteration,
            "env_steps_per_s": round(steps_per_iteration / (collection + learning)),
        },
    }

"""Throughput measurements behind scripts/benchmark.py (medians of repeated timings)."""

import statistics
import time

import jax
import mujoco
import numpy as np
import torch
import torch.distributed

from legged_env.core import mjx
from legged_env.terrain import raycast
from legged_rl.torch_vec_env import TorchVecEnv


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
        runner.collect_rollout()
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


def _median_call_s(fn, args: tuple, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn(*args)`` (a first call compiles outside the timing)."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _box_scene_xml(boxes: np.ndarray) -> str:
    """MJCF of the floor plane and boxes (B, 6) as static world geoms."""

    def vec(v: np.ndarray) -> str:
        return " ".join(f"{x:.6f}" for x in v)

    geoms = "".join(
        f'<geom type="box" pos="{vec((b[:3] + b[3:]) / 2)}" size="{vec((b[3:] - b[:3]) / 2)}"/>' for b in boxes
    )
    return f'<mujoco><worldbody><geom type="plane" size="0 0 0.05"/>{geoms}</worldbody></mujoco>'


def time_depth_methods(
    num_envs: int,
    height: int,
    width: int,
    num_boxes: int,
    repeats: int = 5,
    mjx_num_envs: int = 16,
    max_range: float = 4.0,
    seed: int = 0,
) -> dict:
    """Median seconds per batched depth image (height x width, 1.5 x 1.0 rad fov) and microseconds per env.

    Analytic: jit(vmap(raycast.depth_image)) over ``num_envs`` envs, each with its own ``num_boxes`` random
    boxes and trunk camera pose. mjx.ray: jit(vmap(raycast.mjx_depth_image)) over the first ``mjx_num_envs``
    camera poses in one MJX model holding env 0's boxes (mjx.ray is far slower; per-env figures compare).
    """
    rng = np.random.default_rng(seed)
    half = rng.uniform(0.1, 0.5, (num_envs, num_boxes, 3))
    xy = rng.uniform([0.5, -1.5], [4.0, 1.5], (num_envs, num_boxes, 2))
    centre = np.concatenate([xy, half[..., 2:] + rng.uniform(-0.1, 0.3, (num_envs, num_boxes, 1))], axis=-1)
    boxes = np.concatenate([centre - half, centre + half], axis=-1).astype(np.float32)
    base_pos = np.column_stack([np.zeros((num_envs, 2)), rng.uniform(0.25, 0.4, num_envs)]).astype(np.float32)
    yaw = rng.uniform(-0.3, 0.3, num_envs)
    base_quat = np.column_stack([np.cos(yaw / 2), np.zeros((num_envs, 2)), np.sin(yaw / 2)]).astype(np.float32)
    pitch = rng.uniform(0.3, 0.7, num_envs).astype(np.float32)
    pose = jax.vmap(raycast.camera_pose, in_axes=(0, 0, None, 0))
    cam_pos, cam_rot = pose(base_pos, base_quat, np.array([0.3, 0.0, 0.05], np.float32), pitch)
    dirs = raycast.camera_ray_dirs(height, width, 1.5, 1.0)

    analytic = jax.jit(jax.vmap(lambda b, p, r: raycast.depth_image(b, p, r, dirs, max_range)))
    analytic_s = _median_call_s(analytic, (boxes, cam_pos, cam_rot), repeats)

    model = mujoco.MjModel.from_xml_string(_box_scene_xml(boxes[0]))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    mjx_model, mjx_data = mjx.put_model(model, impl="jax"), mjx.put_data(model, data, impl="jax")

    def image(m, d, p, r):
        return raycast.mjx_depth_image(m, d, p, r, dirs, max_range, (1, 1, 1, 1, 1, 1))

    ray = jax.jit(jax.vmap(image, in_axes=(None, None, 0, 0)))  # model and data as arguments, as in an env step
    mjx_num_envs = min(mjx_num_envs, num_envs)
    mjx_s = _median_call_s(ray, (mjx_model, mjx_data, cam_pos[:mjx_num_envs], cam_rot[:mjx_num_envs]), repeats)
    return {
        "analytic_s": analytic_s,
        "mjx_ray_s": mjx_s,
        "analytic_per_env_us": analytic_s / num_envs * 1e6,
        "mjx_ray_per_env_us": mjx_s / mjx_num_envs * 1e6,
        "num_envs": num_envs,
        "mjx_num_envs": mjx_num_envs,
        "pixels": height * width,
    }

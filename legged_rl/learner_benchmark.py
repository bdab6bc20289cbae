"""The learner alone, st_rl's PPO against rsl-rl-lib's, on the same synthetic batch (``benchmark.py --vs_rsl_rl``).

No simulator: both algorithms see the same pre-drawn observations, rewards, dones and time-outs (a time-out rate
like walk's: 20 s episodes at 50 Hz started at random lengths, so about one env in a thousand ends per step), the
same MLP sizes, activation, observation normalisation, epochs and mini-batches. Timed per rollout of
``num_steps_per_env`` steps:

- ``act_store_s``: ``act`` + ``process_env_step`` for every step, then ``compute_returns`` (what a rollout costs
  besides the env step);
- ``update_s``: one ``update`` (epochs x mini-batches of forward, backward, optimiser step).

rsl-rl-lib (``pip install -e ".[rsl_rl]"``) bootstraps a time-out with the value of the state it acted in; st_rl
with the value of the final state (``infos["final_critic_obs"]``, a second critic pass over the time-out rows).
Not a test: compare the ratios of one run.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time

import torch


def synthetic_rollout(
    num_envs: int, num_obs: int, num_critic_obs: int, steps: int, seed: int = 0, episode_steps: int = 1000
) -> list[dict]:
    """``steps`` pre-drawn env steps: obs, critic obs, rewards, dones and time-outs (``1 / episode_steps`` of the
    envs time out per step, a few more terminate)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        u = torch.rand(num_envs, generator=gen)
        time_outs = u < 1.0 / episode_steps
        dones = time_outs | (u > 1.0 - 0.5 / episode_steps)
        out.append(
            {
                "obs": torch.randn(num_envs, num_obs, generator=gen),
                "critic_obs": torch.randn(num_envs, num_critic_obs, generator=gen),
                "rewards": torch.randn(num_envs, generator=gen) * 0.1,
                "dones": dones,
                "time_outs": time_outs,
            }
        )
    return out


def _st_rl_alg(num_envs, num_obs, num_critic_obs, num_actions, steps, hidden, epochs, mini_batches):
    from st_rl.algorithms.ppo import PPO
    from st_rl.modules import build_policy

    policy_cfg = {
        "class_name": "ActorCritic",
        "actor_hidden_dims": list(hidden),
        "critic_hidden_dims": list(hidden),
        "activation": "elu",
        "init_noise_std": 1.0,
        "obs_normalization": True,
    }
    policy = build_policy(policy_cfg, num_obs, num_critic_obs, num_actions)
    alg = PPO(policy, num_learning_epochs=epochs, num_mini_batches=mini_batches)
    alg.init_storage(num_envs, steps, (num_obs,), (num_critic_obs,), (num_actions,))
    return alg


def _time_st_rl(data, alg, repeats):
    act_store, update = [], []
    alg.policy.train()
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.inference_mode():
            for step in data:
                alg.act(step["obs"], step["critic_obs"])
                infos = {"time_outs": step["time_outs"], "final_critic_obs": step["critic_obs"]}
                alg.process_env_step(step["rewards"], step["dones"], infos)
            alg.compute_returns(data[-1]["critic_obs"])
        mid = time.perf_counter()
        alg.update()
        act_store.append(mid - start)
        update.append(time.perf_counter() - mid)
    return act_store, update


class _RslRlEnvStub:
    """What rsl-rl-lib's PPO.construct_algorithm reads of an env."""

    def __init__(self, num_envs: int, num_actions: int):
        self.num_envs, self.num_actions = num_envs, num_actions


def _rsl_rl_alg(num_envs, num_obs, num_critic_obs, num_actions, steps, hidden, epochs, mini_batches):
    from rsl_rl.algorithms import PPO as RslPPO
    from tensordict import TensorDict

    obs = TensorDict(
        {"policy": torch.zeros(num_envs, num_obs), "critic": torch.zeros(num_envs, num_critic_obs)},
        batch_size=[num_envs],
    )
    mlp = {"hidden_dims": list(hidden), "activation": "elu", "obs_normalization": True}
    cfg = {
        "algorithm": {
            "class_name": "rsl_rl.algorithms.PPO",
            "num_learning_epochs": epochs,
            "num_mini_batches": mini_batches,
        },
        "actor": {
            "class_name": "rsl_rl.models.MLPModel",
            **mlp,
            "distribution_cfg": {"class_name": "rsl_rl.modules.GaussianDistribution", "init_std": 1.0},
        },
        "critic": {"class_name": "rsl_rl.models.MLPModel", **mlp},
        "obs_groups": {"actor": ["policy"], "critic": ["critic"]},
        "num_steps_per_env": steps,
        "multi_gpu": None,
    }
    with contextlib.redirect_stdout(sys.stderr):  # it prints its models; stdout is the benchmark's JSON
        return RslPPO.construct_algorithm(obs, _RslRlEnvStub(num_envs, num_actions), cfg, "cpu")


def _time_rsl_rl(data, alg, repeats):
    from tensordict import TensorDict

    n = data[0]["obs"].shape[0]
    obs_td = [TensorDict({"policy": s["obs"], "critic": s["critic_obs"]}, batch_size=[n]) for s in data]
    act_store, update = [], []
    alg.train_mode()
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.inference_mode():
            for step, obs in zip(data, obs_td, strict=True):
                alg.act(obs)
                alg.process_env_step(obs, step["rewards"], step["dones"], {"time_outs": step["time_outs"]})
            alg.compute_returns(obs_td[-1])
        mid = time.perf_counter()
        alg.update()
        act_store.append(mid - start)
        update.append(time.perf_counter() - mid)
    return act_store, update


def compare_with_rsl_rl(
    num_envs: int,
    num_obs: int,
    num_critic_obs: int,
    num_actions: int,
    steps: int = 24,
    hidden: tuple[int, ...] = (256, 128, 64),
    epochs: int = 5,
    mini_batches: int = 4,
    repeats: int = 5,
    seed: int = 0,
) -> dict:
    """Median act/store and update seconds per rollout of both learners (alternating, after one warm-up each), and
    st_rl's speed as a multiple of rsl-rl-lib's (> 1: st_rl is faster)."""
    torch.manual_seed(seed)
    data = synthetic_rollout(num_envs, num_obs, num_critic_obs, steps, seed)
    sizes = (num_envs, num_obs, num_critic_obs, num_actions, steps, hidden, epochs, mini_batches)
    ours, theirs = _st_rl_alg(*sizes), _rsl_rl_alg(*sizes)
    _time_st_rl(data, ours, 1)  # warm-up
    _time_rsl_rl(data, theirs, 1)
    timings = {"st_rl": ([], []), "rsl_rl": ([], [])}
    for _ in range(repeats):  # alternate, so a slow phase of the machine hits both
        for name, fn, alg in (("st_rl", _time_st_rl, ours), ("rsl_rl", _time_rsl_rl, theirs)):
            a, u = fn(data, alg, 1)
            timings[name][0].extend(a)
            timings[name][1].extend(u)
    med = {name: (statistics.median(a), statistics.median(u)) for name, (a, u) in timings.items()}
    return {
        "num_envs": num_envs,
        "num_obs": num_obs,
        "num_critic_obs": num_critic_obs,
        "steps_per_env": steps,
        "hidden_dims": list(hidden),
        "epochs": epochs,
        "mini_batches": mini_batches,
        "torch_threads": torch.get_num_threads(),
        "st_rl": {"act_store_s": round(med["st_rl"][0], 6), "update_s": round(med["st_rl"][1], 6)},
        "rsl_rl": {"act_store_s": round(med["rsl_rl"][0], 6), "update_s": round(med["rsl_rl"][1], 6)},
        "act_store_speedup": round(med["rsl_rl"][0] / med["st_rl"][0], 3),
        "update_speedup": round(med["rsl_rl"][1] / med["st_rl"][1], 3),
    }

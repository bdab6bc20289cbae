"""On-policy training loop: collect a rollout, update, log, checkpoint. Knows nothing about the simulator.

``train_cfg`` has three sections, each a dict of constructor keyword arguments validated against
a signature (unknown keys and wrong types are :class:`~st_rl.utils.config.ConfigError`):

- ``policy``: ``class_name`` (default ``"ActorCritic"``) + kwargs of that class (see ``st_rl.modules``).
- ``algorithm``: ``class_name`` (default ``"PPO"``) + kwargs of :class:`~st_rl.algorithms.ppo.PPO`.
- ``runner``: fields of :class:`~st_rl.runners.config.RunnerCfg`.

Multi-process (``dist`` from :func:`st_rl.utils.distributed.init_distributed`): every rank runs this loop
on its own env; rank 0's parameters are broadcast when ``learn`` starts (after any ``load``), episode
statistics are gathered from all ranks, and only rank 0 writes TensorBoard (and W&B, ``runner.logger="wandb"``),
progress, config.json and checkpoints. :meth:`OnPolicyRunner.close` finishes the logs (the W&B run).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from typing import Any

import torch

from st_rl.algorithms import ALGORITHM_CLASSES
from st_rl.algorithms.symmetry import symmetry_enabled
from st_rl.env.vec_env import VecEnv
from st_rl.modules import build_policy
from st_rl.modules.actor_critic_recurrent import load_memory_states, memory_states
from st_rl.runners.config import RunnerCfg, resolve_train_cfg
from st_rl.runners.logger import Timer, TrainLogger, combine_rank_logs, episode_means, import_wandb
from st_rl.runners.resume import checkpoint_entry, per_env_group, per_env_of_rank, rank_resume_state
from st_rl.utils.checkpoint import check_weights_only_safe, read_checkpoint
from st_rl.utils.config import signature_params
from st_rl.utils.distributed import DistributedContext
from st_rl.utils.errors import CheckpointError, check_finite
from st_rl.utils.io import atomic_write, atomic_write_json


class OnPolicyRunner:
    """Trains a policy on a :class:`~st_rl.env.VecEnv` with an on-policy algorithm (PPO).

    Attributes:
        current_learning_iteration: number of completed learning iterations (restored by :meth:`load`).
        cfg: the resolved ``{"policy", "algorithm", "runner"}`` config.
        dist: the multi-process context, or ``None`` for a single process.
        world_size: number of processes (1 without ``dist``); ``env.num_envs`` is this rank's share.
    """

    def __init__(
        self,
        env: VecEnv,
        train_cfg: dict[str, Any],
        log_dir: str | None = None,
        device: str = "cpu",
        source: str = "train_cfg",
        dist: DistributedContext | None = None,
    ) -> None:
        self.cfg = resolve_train_cfg(train_cfg, source)
        self.runner_cfg = RunnerCfg(**self.cfg["runner"])
        self.env = env
        self.device = torch.device(device)
        self.log_dir = log_dir
        self.dist = dist
        self.world_size = dist.world_size if dist is not None else 1
        self.is_main = dist is None or dist.is_main
        self.num_obs = env.num_obs
        self.num_critic_obs = env.num_privileged_obs if env.num_privileged_obs is not None else env.num_obs
        self.num_actions = env.num_actions
        if self.runner_cfg.logger == "wandb" and log_dir is not None and self.is_main:
            import_wandb()  # missing: one line naming the extra, before any training
        torch.manual_seed(self.runner_cfg.seed + (dist.rank if dist is not None else 0))
        policy = self._build_policy(source)
        alg_kwargs = {k: v for k, v in self.cfg["algorithm"].items() if k != "class_name"}
        alg_class = ALGORITHM_CLASSES[self.cfg["algorithm"]["class_name"]]
        if "env_cfg" in signature_params(alg_class):  # TPPO: the env's action scale, for the teacher's actions
            alg_kwargs["env_cfg"] = dict(env.cfg)
        self.alg = alg_class(policy, device=self.device, dist=dist, **alg_kwargs)
        self.alg.init_storage(
            env.num_envs,
            self.runner_cfg.num_steps_per_env,
            (env.num_obs,),
            (env.num_privileged_obs,) if env.num_privileged_obs is not None else None,
            (env.num_actions,),
        )
        if symmetry_enabled(self.cfg["algorithm"].get("symmetry")):  # asked for: the env must declare its mirror
            self.alg.set_symmetry(env.get_symmetry())
        self.current_learning_iteration = 0
        self.logger: TrainLogger | None = None
        # Returns/lengths of the last 100 finished episodes and of the running ones, for Train/* logs.
        self._reward_buffer: deque[float] = deque(maxlen=100)
        self._length_buffer: deque[float] = deque(maxlen=100)
        self._cur_reward_sum = torch.zeros(env.num_envs, device=self.device)
        self._cur_episode_length = torch.zeros(env.num_envs, device=self.device)
        self._finished: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (dones, returns, lengths) per step
        self._iteration_times: deque[float] = deque(maxlen=20)
        self._env_state_restored = False  # set by load(): the envs continue a saved run, keep their episode lengths

    def _build_policy(self, source: str = "train_cfg") -> torch.nn.Module:
        env = self.env
        return build_policy(
            self.cfg["policy"],
            env.num_obs,
            self.num_critic_obs,
            env.num_actions,
            env.obs_segments,
            env.privileged_obs_segments,
            source,
            getattr(env, "amp_obs_segments", None),
        )

    # --- training ----------------------------------------------------------------------------------------------------
    def learn(self, num_learning_iterations: int | None = None, init_at_random_ep_len: bool | None = None) -> None:
        """Run ``num_learning_iterations`` (default ``runner.max_iterations``) iterations from
        ``current_learning_iteration``; ``init_at_random_ep_len`` (default ``runner.init_at_random_ep_len``)
        first sets ``env.episode_length_buf`` uniformly in ``[0, max_episode_length)`` to spread time-outs.

        Saves ``model_<iter>.pt`` every ``save_interval`` iterations and at the end. On KeyboardInterrupt
        saves a checkpoint of the completed iterations and re-raises. On a NaN/Inf raises
        :class:`NonFiniteError` without saving, so the last checkpoint on disk is the last good one.
        """
        if num_learning_iterations is None:
            num_learning_iterations = self.runner_cfg.max_iterations
        if init_at_random_ep_len is None:
            init_at_random_ep_len = self.runner_cfg.init_at_random_ep_len
        if init_at_random_ep_len and not self._env_state_restored:
            # Assigned (not written in place) so envs that hold the counter elsewhere can take it.
            buf = self.env.episode_length_buf
            self.env.episode_length_buf = torch.randint_like(buf, high=int(self.env.max_episode_length))
        if self.dist is not None:
            self.dist.broadcast_module(self.alg.policy)  # rank 0's (possibly just loaded) weights everywhere
        self._write_config()
        if self.logger is None:
            log_dir = self.log_dir if self.is_main else None
            print_progress = self.runner_cfg.print_progress and self.is_main
            cfg = self.runner_cfg
            self.logger = TrainLogger(
                log_dir,
                list(self.alg.loss_coefs),
                print_progress,
                logger=cfg.logger,
                wandb_project=cfg.wandb_project or cfg.experiment_name,
                run_config=self._run_config() if log_dir is not None else None,
            )
        self.alg.policy.train()
        self.alg.storage.clear()
        start = self.current_learning_iteration
        stop = start + num_learning_iterations
        try:
            for it in range(start, stop):
                self._iteration(it, stop)
                if self.current_learning_iteration % self.runner_cfg.save_interval == 0:
                    self._save_in_log_dir()
            if self.current_learning_iteration % self.runner_cfg.save_interval != 0 or start == stop:
                self._save_in_log_dir()
        except KeyboardInterrupt:
            self._save_in_log_dir(interrupted=True)
            raise
        finally:
            self.logger.close()

    def close(self) -> None:
        """Finish the logs: TensorBoard's file closed, the W&B run (``runner.logger="wandb"``) finished. A later
        :meth:`learn` starts new ones."""
        if self.logger is not None:
            self.logger.finish()
            self.logger = None

    def _iteration(self, it: int, stop: int) -> None:
        """Collect one rollout, update, log; advances ``current_learning_iteration``."""
        timer = Timer()
        if hasattr(self.alg, "set_learning_iteration"):  # TPPO: its teacher_act_prob schedule runs on iterations
            self.alg.set_learning_iteration(it)
        ep_infos = self.collect_rollout()
        collection_time = timer.lap()
        update_info = self.alg.update()
        for name in self.alg.loss_coefs:
            check_finite(torch.tensor([update_info[name]]), f"loss '{name}'")
        learning_time = timer.lap()
        episodes, rewards, lengths = episode_means(ep_infos), list(self._reward_buffer), list(self._length_buffer)
        if self.dist is not None:  # one all-gather per iteration; rank 0 logs what every rank saw
            ranks = self.dist.gather_objects((update_info, episodes, rewards, lengths))
            update_info, episodes, rewards, lengths = combine_rank_logs(ranks)
        self.current_learning_iteration = it + 1
        self._iteration_times.append(collection_time + learning_time)
        mean_time = sum(self._iteration_times) / len(self._iteration_times)
        steps = self.runner_cfg.num_steps_per_env * self.env.num_envs * self.world_size  # all ranks' env steps
        perf = {
            "fps": steps / (collection_time + learning_time),
            "collection_time": collection_time,
            "learning_time": learning_time,
            "mean_noise_std": float(self.alg.policy.std.detach().mean()),
            "eta": mean_time * (stop - it - 1),
        }
        self.logger.log(it + 1, stop, update_info, episodes, rewards, lengths, perf)

    def collect_rollout(self) -> list[dict]:
        """Step the env ``num_steps_per_env`` times into the algorithm's storage (no update), checking every
        observation and action for NaN/Inf; returns the episode infos of the steps. Public for benchmarks."""
        env = self.env
        obs = env.get_observations().to(self.device)
        privileged_obs = env.get_privileged_observations()
        critic_obs = privileged_obs.to(self.device) if privileged_obs is not None else obs
        ep_infos: list[dict] = []
        with torch.inference_mode():
            for _ in range(self.runner_cfg.num_steps_per_env):
                self._check_obs(obs, privileged_obs)
                actions = self.alg.act(obs, critic_obs)
                check_finite(actions, "actions")
                obs, privileged_obs, rewards, dones, infos = env.step(actions.to(env.device))
                obs, rewards, dones = obs.to(self.device), rewards.to(self.device), dones.to(self.device)
                critic_obs = privileged_obs.to(self.device) if privileged_obs is not None else obs
                check_finite(rewards, "rewards")
                self._check_final_critic_obs(infos)
                self.alg.process_env_step(rewards, dones, infos)
                if infos.get("episode"):
                    ep_infos.append(infos["episode"])
                self._track_episodes(rewards, dones.bool())
            self._check_obs(obs, privileged_obs)
            self.alg.compute_returns(critic_obs)
        self._flush_episodes()
        return ep_infos

    def _check_obs(self, obs: torch.Tensor, privileged_obs: torch.Tensor | None) -> None:
        check_finite(obs, "observations", self.env.obs_segments)
        if privileged_obs is not None:
            check_finite(privileged_obs, "privileged observations", self.env.privileged_obs_segments)

    def _check_final_critic_obs(self, infos: dict) -> None:
        """The contract's ``infos["time_outs"]`` ``(N,)`` and ``infos["final_critic_obs"]`` ``(N, C)`` exist from the
        first step, and the rows the time-outs bootstrap from are finite (a terminated env's final state may be
        anything: it is never evaluated)."""
        missing = [key for key in ("time_outs", "final_critic_obs") if key not in infos]
        if missing:
            raise ValueError(
                f"env.step() infos lack {', '.join(missing)}: the VecEnv contract (st_rl.env.VecEnv.step) needs "
                "time_outs (N,) and final_critic_obs (N, C), the critic observation before any auto-reset"
            )
        final = infos["final_critic_obs"].to(self.device)
        time_outs = infos["time_outs"].to(self.device).bool().view(-1, 1)
        env = self.env
        segments = env.privileged_obs_segments if env.num_privileged_obs is not None else env.obs_segments
        check_finite(torch.where(time_outs, final, 0.0), "final critic observations", segments)

    def _track_episodes(self, rewards: torch.Tensor, dones: torch.Tensor) -> None:
        """Accumulate per-env returns/lengths on the device; finished episodes are recorded with the step and moved
        into the recent-episode buffers by :meth:`_flush_episodes` once per rollout (no host sync per step)."""
        self._cur_reward_sum += rewards
        self._cur_episode_length += 1
        self._finished.append((dones.clone(), self._cur_reward_sum.clone(), self._cur_episode_length.clone()))
        self._cur_reward_sum.masked_fill_(dones, 0.0)
        self._cur_episode_length.masked_fill_(dones, 0.0)

    def _flush_episodes(self) -> None:
        """Push this rollout's finished episodes (step order, then env order) into the recent-episode buffers."""
        if not self._finished:
            return
        dones, returns, lengths = (torch.stack(x) for x in zip(*self._finished, strict=True))
        self._finished.clear()
        self._reward_buffer.extend(returns[dones].tolist())
        self._length_buffer.extend(lengths[dones].tolist())

    def episode_statistics(self) -> dict[str, float]:
        """Mean return and length of the last (up to 100) finished episodes of this rank's envs; NaN before the
        first one ends."""
        n = len(self._reward_buffer)
        return {
            "mean_reward": sum(self._reward_buffer) / n if n else float("nan"),
            "mean_episode_length": sum(self._length_buffer) / n if n else float("nan"),
            "num_episodes": float(n),
        }

    # --- checkpoints -------------------------------------------------------------------------------------------------
    def _save_in_log_dir(self, interrupted: bool = False) -> None:
        """Checkpoint the completed iterations. With several processes every rank calls this (the ranks' resume
        states are gathered to rank 0, a collective), except after an interrupt, when the ranks may be anywhere:
        then rank 0 saves without resume state."""
        if self.log_dir is None:
            return
        resume = None  # one process: save() takes this run's own
        if self.dist is not None and not interrupted:
            resume = checkpoint_entry(self.dist.gather_objects(self.resume_state()))
        if self.is_main:
            self.save(os.path.join(self.log_dir, f"model_{self.current_learning_iteration}.pt"), resume=resume)

    # --- exact resume (see st_rl/runners/resume.py) -------------------------------------------------------------------
    def resume_state(self) -> dict[str, Any]:
        """What this rank's run needs to continue exactly as it would have without a stop, between iterations:
        the torch RNG, the env state (:meth:`VecEnv.get_env_state`), the policy's memory of the running episodes,
        the algorithm's per-env rollout state, the per-env episode counters and the recent-episode buffers."""
        per_env = {f"env/{k}": (v, 0) for k, v in self.env.get_env_state().items()}
        per_env.update({f"memory/{k}": (v, 1) for k, v in memory_states(self.alg.policy).items()})
        per_env.update({f"algorithm/{k}": (v, 0) for k, v in self.alg.rollout_state().items()})
        per_env["runner/cur_reward_sum"] = (self._cur_reward_sum, 0)
        per_env["runner/cur_episode_length"] = (self._cur_episode_length, 0)
        return rank_resume_state(per_env, self._reward_buffer, self._length_buffer)

    def _restore(self, entry: dict[str, Any], path: str) -> None:
        """Continue from a checkpoint's ``"resume"`` entry (split anew for another number of processes)."""
        rank = self.dist.rank if self.dist is not None else 0
        per_env, mine = per_env_of_rank(entry, rank, self.world_size, self.env.num_envs, path)
        try:
            self.env.set_env_state(per_env_group(per_env, "env", torch.device("cpu")))
            load_memory_states(self.alg.policy, per_env_group(per_env, "memory", self.device))
            self.alg.load_rollout_state(per_env_group(per_env, "algorithm", self.device))
        except ValueError as e:
            raise CheckpointError(f"checkpoint {path} does not fit this run: {str(e).splitlines()[0]}") from e
        counters = per_env_group(per_env, "runner", self.device)
        self._cur_reward_sum = counters["cur_reward_sum"].clone()
        self._cur_episode_length = counters["cur_episode_length"].clone()
        if mine is not None:
            torch.set_rng_state(mine["torch_rng"])
            self._reward_buffer = deque(mine["reward_buffer"], maxlen=100)
            self._length_buffer = deque(mine["length_buffer"], maxlen=100)
        self._env_state_restored = True

    def _write_config(self) -> None:
        """Write ``config.json`` (:meth:`_run_config`)."""
        if self.log_dir is None or not self.is_main:
            return
        atomic_write_json(os.path.join(self.log_dir, "config.json"), self._run_config())

    def _run_config(self) -> dict[str, Any]:
        """What ``config.json`` holds: resolved train config, env config (``num_envs``: the total over all ranks),
        sizes, segments, ``world_size`` and ``num_envs_per_rank``."""
        env = self.env
        env_cfg = dict(env.cfg)
        if "num_envs" in env_cfg:
            env_cfg["num_envs"] = env.num_envs * self.world_size
        return {
            **self.cfg,
            "env": env_cfg,
            "world_size": self.world_size,
            "num_envs_per_rank": env.num_envs,
            "num_obs": self.num_obs,
            "num_critic_obs": self.num_critic_obs,
            "num_actions": self.num_actions,
            "obs_segments": dict(env.obs_segments),
            "privileged_obs_segments": _plain(env.privileged_obs_segments),
            "amp_obs_segments": _plain(getattr(env, "amp_obs_segments", None)),
        }

    def save(self, path: str, infos: dict | None = None, resume: dict | None = None) -> None:
        """Atomically write a checkpoint: model and optimiser state, iteration, env sizes, ``infos`` and the
        ``resume`` entry (default in one process: this run's :meth:`resume_state`; None: none).

        Raises:
            NonFiniteError: the policy parameters contain NaN/Inf (a broken model is never saved).
            TypeError: ``infos`` holds something ``torch.load(weights_only=True)`` could not read back.
        """
        check_weights_only_safe(infos, "infos")
        for name, param in self.alg.policy.named_parameters():
            check_finite(param.detach().reshape(1, -1), f"policy parameter '{name}'")
        checkpoint = {
            "model_state_dict": self.alg.policy.state_dict(),
            "optimizer_state_dict": self.alg.optimizer.state_dict(),
            # e.g. APPO's discriminator optimiser; {} for PPO
            "extra_optimizer_state_dicts": {
                name: opt.state_dict() for name, opt in self.alg.extra_optimizers().items()
            },
            "iter": self.current_learning_iteration,
            "learning_rate": self.alg.learning_rate,
            "num_obs": self.num_obs,
            "num_critic_obs": self.num_critic_obs,
            "num_actions": self.num_actions,
            "infos": infos,
            "resume": resume,
        }
        if resume is None and self.dist is None:
            checkpoint["resume"] = checkpoint_entry([self.resume_state()])
        atomic_write(path, lambda tmp_path: torch.save(checkpoint, tmp_path))

    def load(self, path: str, load_optimizer: bool = True, load_resume_state: bool = True) -> dict | None:
        """Restore a checkpoint written by :meth:`save`; returns its ``infos``. With ``load_resume_state`` (and a
        checkpoint that has one) the run continues exactly: RNG, env state, memories, episode statistics.

        Raises:
            CheckpointError: unreadable file, or sizes (obs / critic obs / actions) that differ from the env.
        """
        checkpoint = read_checkpoint(path, self.device)
        found = {k: checkpoint[k] for k in ("num_obs", "num_critic_obs", "num_actions")}
        expected = {"num_obs": self.num_obs, "num_critic_obs": self.num_critic_obs, "num_actions": self.num_actions}
        if found != expected:
            diff = ", ".join(
                f"{k} {expected[k]} (env) vs {found[k]} (checkpoint)" for k in expected if found[k] != expected[k]
            )
            raise CheckpointError(f"checkpoint {path} does not fit the environment: {diff}")
        try:
            self.alg.policy.load_state_dict(checkpoint["model_state_dict"])
            if load_optimizer:
                self.alg.optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
                saved = checkpoint.get("extra_optimizer_state_dicts", {})
                for name, optimizer in self.alg.extra_optimizers().items():
                    if name not in saved:
                        raise ValueError(f"no state for the {name} optimiser")
                    optimizer.load_state_dict(saved[name])
                self.alg.learning_rate = self.alg.optimizer.param_groups[0]["lr"]
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"checkpoint {path} does not fit the policy: {str(e).splitlines()[0]}") from e
        self.current_learning_iteration = int(checkpoint["iter"])
        if load_resume_state and checkpoint.get("resume"):
            self._restore(checkpoint["resume"], path)
        return checkpoint["infos"]

    def get_inference_policy(self, device: str | torch.device | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """Snapshot of the current policy as ``obs (N, num_obs) -> deterministic actions (N, num_actions)``.

        Eval mode, normaliser applied without updating, run under ``torch.inference_mode``.
        """
        policy = self._build_policy()
        policy.load_state_dict(self.alg.policy.state_dict())
        policy = policy.to(device if device is not None else self.device).eval()

        def inference_policy(obs: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return policy.act_inference(obs)

        inference_policy.policy = policy  # the module, e.g. for export
        return inference_policy


def _plain(segments) -> dict | None:
    return dict(segments) if segments else None

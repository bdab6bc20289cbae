"""The bridge: a ``st_rl.env.VecEnv`` over a legged_env task, tensors shared through DLPack.

JAX arrays are handed to torch with ``torch.from_dlpack`` and actions go back with
``jax.dlpack.from_dlpack``: no copy when both live on the same device (CPU here, the same GPU
on a GPU machine). Returned tensors are views of JAX buffers: treat them as read-only. Whatever
comes back from torch is placed on the env's own JAX device (the device of its state), so a step
never sees arrays of two devices.

A step waits for nothing on the host: the episode logs are 0-d tensors computed on the device
(NaN where no episode ended this step), which the learner averages once per iteration.
"""

from collections import OrderedDict

import jax
import numpy as np
import torch
from tensordict import TensorDict

from legged_env.core.legged_env import LeggedEnv
from legged_env.core.state import State
from legged_rl.obs_groups import AMP, CRITIC, POLICY, ObservationGroups
from st_rl.env import VecEnv


def to_torch(x: jax.Array) -> torch.Tensor:
    """Zero-copy view of a JAX array as a torch tensor (bool arrays are converted on the torch side)."""
    return torch.from_dlpack(x)


def to_jax(t: torch.Tensor) -> jax.Array:
    """Zero-copy view of a torch tensor as a JAX array."""
    return jax.dlpack.from_dlpack(t.detach().contiguous())


# The mjx.Data fields a step reads; every other field is recomputed from them by the next mjx.step (and is left
# out of the saved env state: with them an env weighs ~16-26 kB, without ~1-3 kB).
DATA_INPUTS = (
    "qpos",
    "qvel",
    "act",
    "ctrl",
    "qacc_warmstart",
    "qfrc_applied",
    "xfrc_applied",
    "mocap_pos",
    "mocap_quat",
    "time",
)


def saved_leaves(state: State) -> dict[str, jax.Array]:
    """The leaves of a batched State that make up its saved env state, by path (``.info['rng']``, ``.data.qpos``)."""
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        key = jax.tree_util.keystr(path)
        if key.startswith(".data.") and key[len(".data.") :] not in DATA_INPUTS:
            continue
        out[key] = leaf
    return out


class TorchVecEnv(VecEnv):
    """Wraps a :class:`LeggedEnv` (all envs jitted as one batch) as a torch VecEnv.

    Args:
        env: the JAX task.
        device: torch device of the returned tensors; must be where JAX keeps the arrays for
            the transfer to be zero-copy.
    """

    def __init__(self, env: LeggedEnv, device: str | torch.device = "cpu"):
        self.env = env
        self.device = torch.device(device)
        self.cfg = env.cfg
        self.num_envs = env.num_envs
        self.num_actions = env.num_actions
        self.max_episode_length = env.max_episode_length
        self.obs_segments = OrderedDict(env.actor_obs.segments)
        self.privileged_obs_segments = OrderedDict(env.critic_obs.segments)
        self.num_obs = env.actor_obs.size
        self.num_privileged_obs = env.critic_obs.size
        # AMP observation layout (infos["amp_obs"] / ["final_amp_obs"]), None when the task has no AMP group.
        self.amp_obs_segments = OrderedDict(env.amp_obs.segments) if env.amp_obs is not None else None
        self.reward_names = list(env.rewards.names)
        # The same observations as named groups ("policy", "critic", "amp" with an AMP group) for learners that
        # read a TensorDict of groups (get_observation_groups); replace it with ``.derive(...)`` to add a group.
        self.observation_groups = ObservationGroups.from_vec_env(self)
        self.state: State = env.init()
        self.jax_device = next(iter(self.state.obs.devices()))  # where the env keeps its state

    # -------------------------------------------------------------- episode length (settable, as in legged_gym)
    @property
    def episode_length_buf(self) -> torch.Tensor:
        """``(N,)`` long: policy steps taken in each env's current episode."""
        return self._t(self.state.info["step"]).long()

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        steps = self._jax(value.to(torch.int32))
        self.state = self.state.replace(info={**self.state.info, "step": steps})

    # -------------------------------------------------------------- env state (exact resume)
    def get_env_state(self) -> dict[str, torch.Tensor]:
        """The whole batched State (physics inputs, per-env random keys, episode counters and sums, commands,
        curriculum levels, last observations) as CPU tensors ``(N, ...)`` by leaf path; random keys (uint32)
        travel as int32 bit patterns."""
        out = {}
        for key, leaf in saved_leaves(self.state).items():
            array = np.array(leaf)
            out[key] = torch.from_numpy(array.view(np.int32) if array.dtype == np.uint32 else array)
        return out

    def set_env_state(self, state: dict[str, torch.Tensor]) -> None:
        """Continue from :meth:`get_env_state` of an env of the same task config and ``num_envs``."""
        current = saved_leaves(self.state)
        missing, unexpected = sorted(set(current) - set(state)), sorted(set(state) - set(current))
        if missing or unexpected:
            raise ValueError(f"the env state is of another env config (missing {missing}, unexpected {unexpected})")
        leaves, treedef = jax.tree_util.tree_flatten_with_path(self.state)
        restored = []
        for path, leaf in leaves:
            key = jax.tree_util.keystr(path)
            if key in state:
                array = state[key].cpu().numpy()
                if array.dtype != leaf.dtype:
                    array = array.view(leaf.dtype)
                if array.shape != leaf.shape:
                    raise ValueError(f"env state {key} has shape {array.shape}, this env {tuple(leaf.shape)}")
                leaf = jax.device_put(array, self.jax_device)
            restored.append(leaf)
        self.state = jax.tree_util.tree_unflatten(treedef, restored)

    # -------------------------------------------------------------- VecEnv
    def _t(self, x: jax.Array) -> torch.Tensor:
        return to_torch(x).to(self.device)

    def _jax(self, t: torch.Tensor) -> jax.Array:
        """``t`` on the env's JAX device (zero-copy when torch already holds it there)."""
        return jax.device_put(to_jax(t), self.jax_device)

    def get_observations(self) -> torch.Tensor:
        return self._t(self.state.obs)

    def get_privileged_observations(self) -> torch.Tensor:
        return self._t(self.state.critic_obs)

    def get_amp_observations(self) -> torch.Tensor:
        """``(N, num_amp_obs)`` AMP observation of the current state (``(N, 0)`` without an AMP group)."""
        return self._t(self.state.amp_obs)

    def base_observations(self) -> dict[str, torch.Tensor]:
        """The current flat observations by base group name: ``policy``, ``critic`` (and ``amp``)."""
        out = {POLICY: self.get_observations(), CRITIC: self.get_privileged_observations()}
        if self.amp_obs_segments is not None:
            out[AMP] = self.get_amp_observations()
        return out

    def get_observation_groups(self) -> TensorDict:
        """The current observations as a TensorDict ``(num_envs,)`` of one flat tensor per group of
        :attr:`observation_groups` (whose ``segments(group)`` is each one's layout); the base groups are the very
        tensors of get_observations / get_privileged_observations / get_amp_observations."""
        return self.observation_groups.gather(self.base_observations())

    def split(self, group: str) -> TensorDict:
        """The current observation of ``group`` as a TensorDict ``(num_envs,)`` of its segments, each
        ``(num_envs, *shape)``."""
        groups = self.observation_groups
        return groups.split(group, groups.gather(self.base_observations(), [group])[group])

    def get_symmetry(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """See :meth:`st_rl.env.VecEnv.get_symmetry`: the task's :meth:`~legged_env.core.legged_env.LeggedEnv.
        mirror_spec` as torch tensors on :attr:`device` (a legged_env ConfigError names a segment without one)."""
        spec = self.env.mirror_spec()

        def to_tensors(mirror):
            perm, sign = mirror
            return torch.as_tensor(np.asarray(perm), dtype=torch.long, device=self.device), torch.as_tensor(
                np.asarray(sign), dtype=torch.float32, device=self.device
            )

        return {name: to_tensors(spec[name]) for name in ("actor", "critic", "actions")}

    def reset(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.state = self.env.init(seed_offset=1)
        return self.get_observations(), self.get_privileged_observations()

    def step(self, actions: torch.Tensor):
        """See :meth:`st_rl.env.VecEnv.step`; ``infos`` also holds ``metrics`` (clean per-step values) and, with
        an AMP group, ``amp_obs`` (current state, after any auto-reset) and ``final_amp_obs`` (before it)."""
        self.state = self.env.step_batched(self.state, self._jax(actions.float()))
        s = self.state
        dones = self._t(s.done).bool()
        infos = {
            "time_outs": self._t(s.time_out).bool(),
            "final_critic_obs": self._t(s.final_critic_obs),
            "episode": self._episode_means(s, dones),
            "metrics": {k: self._t(v) for k, v in s.metrics.items() if k != "episode_sums"},
        }
        if self.amp_obs_segments is not None:
            infos["amp_obs"] = self._t(s.amp_obs)
            infos["final_amp_obs"] = self._t(s.final_amp_obs)
        return self.get_observations(), self.get_privileged_observations(), self._t(s.reward), dones, infos

    def env_state_qpos(self, index: int) -> jax.Array:
        """``(nq,)`` generalised position of env ``index`` (for recording a video)."""
        return self.state.data.qpos[index]

    def _episode_means(self, s: State, dones: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean episode sum of every reward term over the episodes that ended this step, as ``rew_<term>`` 0-d
        tensors, NaN when none ended (computed without waiting for the device), plus the task's logs."""
        num_done = dones.sum()

        def mean_over_done(v: torch.Tensor) -> torch.Tensor:
            return torch.where(dones, v, 0.0).sum() / num_done  # 0 / 0 = NaN: no episode ended

        out = {f"rew_{k}": mean_over_done(self._t(v)) for k, v in s.metrics["episode_sums"].items()}
        task_logs = getattr(self.env, "episode_logs", None)  # e.g. the climb curriculum's levels and success
        if task_logs is not None:
            out.update(task_logs({k: self._t(v) for k, v in s.metrics.items() if k != "episode_sums"}, dones))
        return out

"""A TorchRL ``EnvBase`` over our envs: batch ``[num_envs]``, one observation entry per observation group.

    from legged_rl.adapters.torchrl_env import TorchRLEnv

    env = TorchRLEnv("walk", num_envs=16)  # or TorchRLEnv(torch_vec_env)
    check_env_specs(env)
    data = env.rollout(100, policy, break_when_any_done=False)  # policy reads "policy", writes "action"

Keys: the groups of :mod:`legged_rl.obs_groups` (``policy``, ``critic``, ``amp`` with an AMP task, and every group
derived on the TorchVecEnv's ``observation_groups`` before wrapping it), each ``(num_envs, size)``; with
``segments=True`` also ``("segments", <group>, <segment>)``, ``(num_envs, *shape)``; ``action``; ``reward``,
``done``, ``terminated``, ``truncated`` ``(num_envs, 1)`` (truncated = time-out, terminated = any other end).

Auto-reset. Our env restarts an ended episode inside the step that ends it and keeps the final *critic* (and AMP)
observation of the ended episode, not its final actor observation. So for an env done in a step:

* ``("next", "critic")`` / ``("next", "amp")`` are the final observations of the ended episode (what TorchRL expects
  of "next": bootstrap the values of truncated episodes from "critic");
* ``("next", "policy")`` is already the first observation of the new episode (the final one exists nowhere);
* the partial reset TorchRL then asks for (``_reset`` mask = the done envs) simulates nothing: those envs are at the
  first step of their new episode, and ``_reset`` returns their current observations (the new episode's first).

A ``_reset`` mask naming an env that is mid-episode restarts it (a fresh initial state merged into the batch); no
mask restarts every env. Seeds (:meth:`set_seed`) pick the initial states of those restarts.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase

from legged_rl.adapters import import_extra
from legged_rl.obs_groups import AMP, CRITIC, POLICY, ObservationGroups
from legged_rl.torch_vec_env import TorchVecEnv

import_extra("torchrl", "torchrl", "torchrl", __name__)  # missing: one line naming the extra
from torchrl.data import Bounded, Categorical, Composite, Unbounded  # noqa: E402
from torchrl.envs import EnvBase  # noqa: E402

SEGMENTS = "segments"
DONE_KEYS = ("done", "terminated", "truncated")


@jax.jit
def _restart_envs(mask: jax.Array, fresh, state):
    """``state`` with the envs where ``mask`` ``(N,)`` is non-zero replaced by those of ``fresh`` (leaves without
    the env axis are kept)."""
    n = mask.shape[0]

    def pick(new, old):
        if old.ndim == 0 or old.shape[0] != n:
            return old
        return jnp.where(mask.reshape((n,) + (1,) * (old.ndim - 1)) != 0, new, old)

    return jax.tree.map(pick, fresh, state)


class TorchRLEnv(EnvBase):
    """TorchRL env over a :class:`~legged_rl.torch_vec_env.TorchVecEnv` (see the module docstring for the reset
    semantics).

    Args:
        env: the TorchVecEnv, or a task name (built by :func:`legged_rl.make_vec_env` with ``num_envs`` and
            ``make_kwargs``: ``config``, ``seed``, ``device``, env overrides).
        num_envs: envs to build for a task name.
        segments: also return every group split into its segments, under ``("segments", group, segment)``.
        seed: seeds the initial states of the restarts :meth:`reset` asks for (see :meth:`set_seed`).
    """

    def __init__(
        self,
        env: TorchVecEnv | str,
        num_envs: int | None = None,
        *,
        segments: bool = False,
        seed: int = 0,
        **make_kwargs,
    ):
        if isinstance(env, str):
            from legged_rl.api import make_vec_env

            env = make_vec_env(env, num_envs=num_envs, **make_kwargs)
        elif num_envs is not None or make_kwargs:
            raise TypeError("num_envs and make_vec_env arguments apply to a task name, not to a built env")
        super().__init__(device=env.device, batch_size=torch.Size([env.num_envs]))
        self.venv = env
        self.num_envs = env.num_envs
        self.with_segments = segments
        self._groups = env.observation_groups
        if segments and SEGMENTS in self._groups:
            raise ValueError(f"an observation group is named '{SEGMENTS}', the key of the segment views")
        self._seed_rng = np.random.default_rng(seed)
        self._make_specs()

    @property
    def observation_groups(self) -> ObservationGroups:
        """Layout of every observation entry (``.segments("critic")``)."""
        return self._groups

    # ------------------------------------------------------------------ specs
    def _make_specs(self) -> None:
        n, dev, groups = self.num_envs, self.device, self._groups
        obs = {g: Unbounded(shape=(n, groups.size(g)), dtype=torch.float32, device=dev) for g in groups.names}
        if self.with_segments:
            obs[SEGMENTS] = Composite(
                {
                    g: Composite(
                        {
                            s: Unbounded(shape=(n, *shape), dtype=torch.float32, device=dev)
                            for s, shape in groups.segments(g).items()
                        },
                        shape=(n,),
                        device=dev,
                    )
                    for g in groups.names
                },
                shape=(n,),
                device=dev,
            )
        self.observation_spec = Composite(obs, shape=(n,), device=dev)
        clip = self.venv.cfg.get("control", {}).get("clip_actions")
        shape = (n, self.venv.num_actions)
        if clip is not None and math.isfinite(clip):  # the env clips every action to [-clip, clip]
            self.action_spec = Bounded(low=-clip, high=clip, shape=shape, dtype=torch.float32, device=dev)
        else:
            self.action_spec = Unbounded(shape=shape, dtype=torch.float32, device=dev)
        self.reward_spec = Unbounded(shape=(n, 1), dtype=torch.float32, device=dev)
        self.done_spec = Composite(
            {k: Categorical(2, shape=(n, 1), dtype=torch.bool, device=dev) for k in DONE_KEYS}, shape=(n,), device=dev
        )

    # ------------------------------------------------------------------ EnvBase
    def _observations(self, base: dict[str, torch.Tensor]) -> TensorDict:
        # Copies: the base tensors are views of the env's JAX buffers, and TorchRL writes into what it is given
        # (a partial reset updates the "next" observations in place).
        out = self._groups.gather(base).clone()
        if self.with_segments:
            out[SEGMENTS] = TensorDict(
                {g: self._groups.split(g, out[g]) for g in self._groups.names}, batch_size=self.batch_size
            )
        return out

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        obs, _, rewards, dones, infos = self.venv.step(tensordict.get("action").clone())
        time_outs = infos["time_outs"]
        # Final observations of the ended episodes where the env keeps them (critic, AMP); see the module docstring.
        base = {POLICY: obs, CRITIC: infos["final_critic_obs"]}
        if AMP in self._groups:
            base[AMP] = infos["final_amp_obs"]
        out = self._observations(base)
        out["reward"] = rewards.reshape(self.num_envs, 1).clone()
        out["done"] = dones.reshape(self.num_envs, 1).clone()
        out["terminated"] = (dones & ~time_outs).reshape(self.num_envs, 1)
        out["truncated"] = time_outs.reshape(self.num_envs, 1).clone()
        return out

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        mask = tensordict.get("_reset", None) if tensordict is not None else None
        if mask is None:
            self._restart(None)
        else:
            # Envs at step 0 have just started an episode (auto-reset in the last step, or a restart): nothing to
            # simulate for them. The others in the mask are mid-episode: restart them.
            mask = mask.reshape(self.num_envs).to(self.venv.device)
            running = mask & (self.venv.episode_length_buf != 0)
            if bool(running.all()):
                self._restart(None)
            elif bool(running.any()):
                self._restart(running)
        out = self._observations(self.venv.base_observations())
        for key in DONE_KEYS:
            out[key] = torch.zeros(self.num_envs, 1, dtype=torch.bool, device=self.device)
        return out

    def _restart(self, mask: torch.Tensor | None) -> None:
        """Fresh initial states for every env (``mask`` None) or for those where ``mask`` ``(N,)`` is True."""
        venv = self.venv
        fresh = venv.env.init(seed_offset=int(self._seed_rng.integers(2, 2**31 - 1)))
        if mask is None:
            venv.state = fresh
        else:
            mask = jax.device_put(mask.to(torch.int32).cpu().numpy(), venv.jax_device)
            venv.state = _restart_envs(mask, fresh, venv.state)

    def _set_seed(self, seed: int | None) -> None:
        self._seed_rng = np.random.default_rng(seed)

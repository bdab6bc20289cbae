"""rsl-rl-lib's ``rsl_rl.env.VecEnv`` over our envs: ``rsl_rl.runners.OnPolicyRunner`` trains on them unchanged.

    from rsl_rl.runners import OnPolicyRunner
    from legged_rl.adapters.rsl_rl_env import RslRlVecEnv

    env = RslRlVecEnv("walk", num_envs=4096)  # or RslRlVecEnv(torch_vec_env)
    train_cfg["obs_groups"] = {"actor": ["policy"], "critic": ["critic"]}
    OnPolicyRunner(env, train_cfg, log_dir, device="cpu").learn(1500)

Observations are a TensorDict of the groups of :mod:`legged_rl.obs_groups` (``policy``, ``critic``, ``amp`` with an
AMP task, and any group derived on ``env.observation_groups``), the same tensors our flat contract returns. After a
done the env has already reset (as rsl_rl expects): the returned observation is the new episode's first one.
``extras["time_outs"]`` flags time-outs (rsl_rl bootstraps them); ``extras["log"]`` holds the mean episode sum of
every reward term (``Episode_Reward/<term>``) and the task's episode logs (``Episode/<name>``) over the episodes
that ended in the step, each as one value per ended episode so rsl_rl's per-iteration mean weighs episodes alike.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict

from legged_rl.adapters import import_extra
from legged_rl.obs_groups import AMP, CRITIC, POLICY, ObservationGroups
from legged_rl.torch_vec_env import TorchVecEnv

_RslRlVecEnv = import_extra("rsl_rl.env", "rsl-rl-lib", "rsl_rl", __name__).VecEnv

REWARD_PREFIX = "rew_"  # TorchVecEnv's episode-mean key of a reward term


def log_key(name: str) -> str:
    """rsl_rl ``extras["log"]`` key of one of TorchVecEnv's ``infos["episode"]`` entries."""
    if name.startswith(REWARD_PREFIX):
        return "Episode_Reward/" + name[len(REWARD_PREFIX) :]
    return "Episode/" + name


class RslRlVecEnv(_RslRlVecEnv):
    """rsl-rl-lib's VecEnv over a :class:`~legged_rl.torch_vec_env.TorchVecEnv`.

    Args:
        env: the TorchVecEnv, or a task name (then built by :func:`legged_rl.make_vec_env` with ``num_envs`` and
            ``make_kwargs``: ``config``, ``seed``, ``device``, env overrides).
        num_envs: envs to build for a task name.
    """

    def __init__(self, env: TorchVecEnv | str, num_envs: int | None = None, **make_kwargs):
        if isinstance(env, str):
            from legged_rl.api import make_vec_env

            env = make_vec_env(env, num_envs=num_envs, **make_kwargs)
        elif num_envs is not None or make_kwargs:
            raise TypeError("num_envs and make_vec_env arguments apply to a task name, not to a built env")
        self.env = env
        self.num_envs = env.num_envs
        self.num_actions = env.num_actions
        self.max_episode_length = env.max_episode_length
        self.device = env.device
        self.cfg = env.cfg

    @property
    def observation_groups(self) -> ObservationGroups:
        """Layout of every group of the observation TensorDict (``.segments("critic")``)."""
        return self.env.observation_groups

    @property
    def episode_length_buf(self) -> torch.Tensor:
        return self.env.episode_length_buf

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        self.env.episode_length_buf = value

    def get_observations(self) -> TensorDict:
        return self.env.get_observation_groups()

    def reset(self) -> TensorDict:
        """Every env restarted (rsl_rl's runner never calls it: the env resets itself after a done)."""
        self.env.reset()
        return self.get_observations()

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        obs, critic_obs, rewards, dones, infos = self.env.step(actions)
        base = {POLICY: obs, CRITIC: critic_obs}
        if AMP in self.observation_groups:
            base[AMP] = infos["amp_obs"]
        extras = {"time_outs": infos["time_outs"], "log": self._episode_log(infos["episode"], dones)}
        return self.observation_groups.gather(base), rewards, dones.long(), extras

    @staticmethod
    def _episode_log(episode: dict[str, torch.Tensor], dones: torch.Tensor) -> dict[str, torch.Tensor]:
        """``extras["log"]``: each episode mean repeated once per episode that ended (rsl_rl concatenates a
        rollout's values and averages them); empty when none ended, and a NaN mean is left out (one host sync)."""
        names = list(episode)
        values = torch.stack([dones.sum().float(), *(episode[k].float() for k in names)]).tolist()
        num_done = int(values[0])
        if num_done == 0:
            return {}
        out = {}
        for name, value in zip(names, values[1:]):
            if value == value:  # not NaN
                out[log_key(name)] = torch.full((num_done,), value, device=dones.device)
        return out

"""TorchVecEnv: the st_rl VecEnv contract over a JAX task, auto-reset bookkeeping, zero-copy DLPack."""

import math

import jax.numpy as jnp
import pytest
import torch

from legged_rl.torch_vec_env import TorchVecEnv, to_jax
from tests.legged_env.envs import segment_slices

pytestmark = pytest.mark.timeout(180)

ENDED = [1, 4, 9]
FALLEN = [2, 4]  # env 4 is both at its time limit and fallen: a termination, not a time-out
ACTION = 0.3


def _warm_venv(env, steps: int = 5) -> TorchVecEnv:
    """A venv whose envs took a few constant-action steps (so last_actions is non-zero)."""
    venv = TorchVecEnv(env)
    actions = torch.full((venv.num_envs, venv.num_actions), ACTION)
    for _ in range(steps):
        _, _, _, dones, _ = venv.step(actions)
        assert not bool(dones.any())
    return venv


def _mask(n: int, idx: list[int]) -> torch.Tensor:
    m = torch.zeros(n, dtype=torch.bool)
    m[idx] = True
    return m


def test_time_out_auto_resets_and_keeps_final_critic_obs(walk_env):
    venv = _warm_venv(walk_env)
    n, cfg = venv.num_envs, walk_env.cfg
    ended = _mask(n, ENDED)
    before = venv.episode_length_buf.clone()
    untouched = venv.state
    steps = before.clone()
    steps[ended] = venv.max_episode_length - 1
    venv.episode_length_buf = steps
    assert torch.equal(venv.episode_length_buf, steps)

    actions = torch.full((n, venv.num_actions), ACTION)
    obs, critic, rewards, dones, infos = venv.step(actions)

    assert torch.equal(dones, ended)
    assert torch.equal(infos["time_outs"], ended)
    length = venv.episode_length_buf
    assert torch.all(length[ended] == 0)
    assert torch.equal(length[~ended], before[~ended] + 1)

    # The returned observation of an ended env is its reset observation.
    a, c = segment_slices(venv.obs_segments), segment_slices(venv.privileged_obs_segments)
    assert torch.all(obs[ended, a["last_actions"]] == 0.0)
    assert torch.all(obs[~ended, a["last_actions"]] == ACTION)
    cmd = obs[:, a["commands"]]
    for i, key in enumerate(("lin_vel_x", "lin_vel_y", "ang_vel_yaw")):
        lo, hi = cfg["commands"][key]
        assert torch.all((cmd[ended, i] >= lo) & (cmd[ended, i] <= hi))
    # Fresh pose: joints within joint_pos_noise of the default, no foot contact yet.
    assert torch.all(critic[ended, c["dof_pos"]].abs() <= cfg["init_state"]["joint_pos_noise"] + 1e-6)
    assert torch.all(critic[ended, c["foot_contacts"]] == 0.0)

    # The final critic obs is the pre-reset state's: it differs from the reset one and saw the last action.
    final = infos["final_critic_obs"]
    assert torch.all((final[ended] != critic[ended]).any(dim=1))
    assert torch.all(final[ended, c["last_actions"]] == ACTION)
    assert torch.equal(final[~ended], critic[~ended])

    # Envs that did not end step exactly as they would have without the counter change.
    ref = walk_env.step_batched(untouched, to_jax(actions))
    assert torch.equal(obs[~ended], torch.from_dlpack(ref.obs)[~ended])
    assert torch.equal(critic[~ended], torch.from_dlpack(ref.critic_obs)[~ended])
    assert torch.equal(rewards[~ended], torch.from_dlpack(ref.reward)[~ended])

    # Per-term episode means of the finished episodes, only for active (non-zero scale) terms.
    assert set(infos["episode"]) == {f"rew_{name}" for name in walk_env.rewards.names}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in infos["episode"].values())


def test_fallen_env_is_done_but_not_time_out(walk_env):
    venv = _warm_venv(walk_env)
    n = venv.num_envs
    ended, fallen = _mask(n, ENDED), _mask(n, FALLEN)
    steps = venv.episode_length_buf.clone()
    steps[ended] = venv.max_episode_length - 1
    venv.episode_length_buf = steps
    state = venv.state
    upside_down = jnp.array([0.0, 1.0, 0.0, 0.0])  # half a turn about x
    qpos = state.data.qpos.at[jnp.array(FALLEN), 3:7].set(upside_down)
    venv.state = state.replace(data=state.data.replace(qpos=qpos))

    _, _, _, dones, infos = venv.step(torch.zeros(n, venv.num_actions))

    assert torch.equal(dones, ended | fallen)
    assert torch.equal(infos["time_outs"], ended & ~fallen)
    assert torch.all(venv.episode_length_buf[ended | fallen] == 0)


def test_contract_shapes_and_dtypes(walk_env):
    venv = TorchVecEnv(walk_env)
    n, o, p = venv.num_envs, venv.num_obs, venv.num_privileged_obs
    assert o == sum(math.prod(s) for s in venv.obs_segments.values())
    assert p == sum(math.prod(s) for s in venv.privileged_obs_segments.values())
    assert venv.num_critic_obs == p
    assert venv.max_episode_length == math.ceil(walk_env.cfg["episode_length_s"] / walk_env.dt)
    assert venv.episode_length_buf.shape == (n,) and venv.episode_length_buf.dtype == torch.long
    assert venv.reward_names == walk_env.rewards.names

    obs, priv = venv.reset()
    assert obs.shape == (n, o) and obs.dtype == torch.float32
    assert priv.shape == (n, p) and priv.dtype == torch.float32
    time_outs_seen = dones_seen = 0
    for _ in range(3):
        obs, priv, rewards, dones, infos = venv.step(torch.randn(n, venv.num_actions))
        assert obs.shape == (n, o) and obs.dtype == torch.float32
        assert priv.shape == (n, p) and priv.dtype == torch.float32
        assert rewards.shape == (n,) and rewards.dtype == torch.float32
        assert dones.shape == (n,) and dones.dtype == torch.bool
        assert {"time_outs", "final_critic_obs", "episode"} <= set(infos)
        assert infos["time_outs"].shape == (n,) and infos["time_outs"].dtype == torch.bool
        assert infos["final_critic_obs"].shape == (n, p) and infos["final_critic_obs"].dtype == torch.float32
        assert isinstance(infos["episode"], dict)
        assert not bool((infos["time_outs"] & ~dones).any())  # time-outs are a subset of dones
        time_outs_seen += int(infos["time_outs"].sum())
        dones_seen += int(dones.sum())
        metrics = infos["metrics"]
        assert metrics["lin_vel"].shape == (n, 3) and metrics["commands"].shape == (n, 3)
        assert metrics["power"].shape == (n,)
        assert "episode_sums" not in metrics


def test_observations_are_zero_copy_views(walk_env):
    venv = TorchVecEnv(walk_env)
    state = venv.state
    assert torch.from_dlpack(state.obs).data_ptr() == state.obs.unsafe_buffer_pointer()
    assert venv.get_observations().data_ptr() == state.obs.unsafe_buffer_pointer()
    assert venv.get_privileged_observations().data_ptr() == state.critic_obs.unsafe_buffer_pointer()
    obs, priv, rewards, _, infos = venv.step(torch.zeros(venv.num_envs, venv.num_actions))
    s = venv.state
    assert obs.data_ptr() == s.obs.unsafe_buffer_pointer()
    assert priv.data_ptr() == s.critic_obs.unsafe_buffer_pointer()
    assert rewards.data_ptr() == s.reward.unsafe_buffer_pointer()
    assert infos["final_critic_obs"].data_ptr() == s.final_critic_obs.unsafe_buffer_pointer()
    actions = torch.randn(venv.num_envs, venv.num_actions)
    assert to_jax(actions).unsafe_buffer_pointer() == actions.data_ptr()

"""Sim-to-sim: the plain-MuJoCo deployment builds the env's observation and applies the env's control law."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from legged_rl.deploy import policy_metadata
from legged_rl.sim2sim import MujocoDeployment
from st_rl.utils.io import atomic_write_json

pytestmark = pytest.mark.timeout(180)


class _Linear(torch.nn.Module):
    def __init__(self, num_obs: int, num_actions: int):
        super().__init__()
        self.layer = torch.nn.Linear(num_obs, num_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.layer(obs))


@pytest.fixture()
def deployment(calm_env, tmp_path):
    torch.manual_seed(0)
    scripted = torch.jit.script(_Linear(calm_env.actor_obs.size, calm_env.num_actions))
    scripted.save(str(tmp_path / "policy.pt"))
    atomic_write_json(str(tmp_path / "policy.json"), policy_metadata(calm_env, "walk"))
    return MujocoDeployment(str(tmp_path)), scripted


def _stepped_state(env):
    state = env.init()
    key = jax.random.PRNGKey(3)
    for _ in range(30):
        key, sub = jax.random.split(key)
        state = env.step_batched(state, 0.3 * jax.random.normal(sub, (env.num_envs, env.num_actions)))
    return state


def _load_env_state(dep: MujocoDeployment, state, e: int) -> None:
    dep.data.qpos[:] = np.asarray(state.data.qpos[e], dtype=np.float64)
    dep.data.qvel[:] = np.asarray(state.data.qvel[e], dtype=np.float64)
    # With one solver iteration the contact solution depends on the warm start: copy it too.
    dep.data.qacc_warmstart[:] = np.asarray(state.data.qacc_warmstart[e], dtype=np.float64)
    dep.commands = np.asarray(state.info["commands"][e], dtype=np.float64)
    dep.last_actions = np.asarray(state.info["last_actions"][e], dtype=np.float64)


def test_deployment_observation_equals_env_observation(calm_env, deployment):
    dep, _ = deployment
    state = _stepped_state(calm_env)
    for e in np.where(~np.asarray(state.done))[0][:5]:
        _load_env_state(dep, state, e)
        np.testing.assert_allclose(dep.observation(), np.asarray(state.obs[e]), atol=2e-5)


def test_deployment_step_matches_env_step(calm_env, deployment):
    """One policy step of plain MuJoCo (float64) and MJX (float32) from the same state with the same action
    ends in nearly the same joint state (motor strength is 1 in the calm env, as on the robot)."""
    dep, scripted = deployment
    state = _stepped_state(calm_env)
    obs = torch.from_dlpack(state.obs).clone()
    with torch.no_grad():
        actions = scripted(obs)
    nxt = calm_env.step_batched(state, jnp.asarray(actions.numpy()))
    for e in np.where(~np.asarray(state.done | nxt.done))[0][:3]:
        _load_env_state(dep, state, e)
        dep.step()
        np.testing.assert_allclose(dep.last_actions, actions[e].numpy(), atol=1e-5)
        np.testing.assert_allclose(dep.data.qpos[7:], np.asarray(nxt.data.qpos[e, 7:]), atol=2e-3)
        np.testing.assert_allclose(dep.data.qvel[6:], np.asarray(nxt.data.qvel[e, 6:]), atol=0.2)


def test_the_onnx_export_runs_the_same_deployment_as_the_torchscript_one(calm_env, tmp_path):
    """``MujocoDeployment(policy_file="policy.onnx")`` (onnxruntime) drives the robot as ``policy.pt`` does: same
    actions from the same states, recurrent state carried and reset each episode."""
    from collections import OrderedDict

    from st_rl.modules import ActorCriticRecurrent
    from st_rl.utils.export import export_policy_as_jit
    from st_rl.utils.onnx_export import export_policy_as_onnx

    torch.manual_seed(0)
    segments = OrderedDict(calm_env.actor_obs.segments)
    policy = ActorCriticRecurrent(
        calm_env.actor_obs.size, calm_env.actor_obs.size, calm_env.num_actions, obs_segments=segments,
        actor_hidden_dims=[32], critic_hidden_dims=[32], rnn_hidden_size=16, obs_normalization=True,
    )  # fmt: skip
    meta = policy_metadata(calm_env, "walk")
    export_policy_as_jit(policy, str(tmp_path / "policy.pt"), calm_env.actor_obs.size)
    export_policy_as_onnx(policy, str(tmp_path / "policy.onnx"), calm_env.actor_obs.size, metadata=meta)
    atomic_write_json(str(tmp_path / "policy.json"), meta)
    runs = {}
    for name in ("policy.pt", "policy.onnx"):
        dep = MujocoDeployment(str(tmp_path), policy_file=name)
        actions = []
        for _episode in range(2):  # the second episode starts from a reset memory
            dep.reset()
            for _ in range(10):
                dep.step()
                actions.append(dep.last_actions.copy())
        runs[name] = np.array(actions)
    assert np.abs(runs["policy.pt"][10] - runs["policy.pt"][11]).max() > 1e-3  # the policy moves
    np.testing.assert_allclose(runs["policy.onnx"], runs["policy.pt"], atol=1e-4)
    with pytest.raises(ValueError, match="policy file must be one of policy.pt, policy.onnx"):
        MujocoDeployment(str(tmp_path), policy_file="policy.tflite")

"""Sim-to-sim: the plain-MuJoCo deployment builds the env's observation and applies the env's control law; the
referee physics is MuJoCo's defaults with every geom colliding; the module never imports JAX."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
import torch

from legged_rl.deploy import policy_metadata
from legged_rl.sim2sim import MujocoDeployment, run_command
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
    return MujocoDeployment(str(tmp_path), physics="training"), scripted


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
    ends in nearly the same joint state (motor strength is 1 in the calm env, as on the robot): the training
    physics has the env's solver options."""
    dep, scripted = deployment
    assert dep.model.opt.iterations == calm_env.cfg["solver"]["iterations"] == calm_env.mj_model.opt.iterations
    assert dep.model.opt.ls_iterations == calm_env.mj_model.opt.ls_iterations
    midphase = int(mujoco.mjtDisableBit.mjDSBL_MIDPHASE)  # off in sim2sim (boxes move after compiling)
    assert dep.model.opt.disableflags == calm_env.mj_model.opt.disableflags | midphase
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


def test_referee_physics_is_mujocos_defaults_with_every_geom_colliding(calm_env, deployment, tmp_path):
    """The referee: Newton with MuJoCo's default iterations (100 / 50) and eulerdamp on (go1.xml disables it for
    training), every geom contype = conaffinity = 1 with condim 3 and the floor's friction, robot self-collisions
    on (MuJoCo filters parent-child pairs itself); joint passive dynamics are the MJCF's in both physics."""
    training, _ = deployment
    ref = MujocoDeployment(str(tmp_path)).model  # the default physics
    default = mujoco.MjModel.from_xml_string("<mujoco/>").opt
    assert ref.opt.solver == default.solver == mujoco.mjtSolver.mjSOL_NEWTON
    assert (ref.opt.iterations, ref.opt.ls_iterations) == (100, 50) == (default.iterations, default.ls_iterations)
    assert ref.opt.cone == default.cone and ref.opt.tolerance == default.tolerance
    assert not ref.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_EULERDAMP
    assert training.model.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_EULERDAMP  # go1.xml's training setting
    assert ref.opt.timestep == calm_env.cfg["sim_dt"]
    assert set(ref.geom_contype) == set(ref.geom_conaffinity) == {1} and set(ref.geom_condim) == {3}
    floor = mujoco.mj_name2id(ref, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    np.testing.assert_array_equal(ref.geom_friction, np.broadcast_to(ref.geom_friction[floor], ref.geom_friction.shape))
    assert ref.geom_friction[floor, 0] == 1.0
    for name in ("dof_damping", "dof_frictionloss", "dof_armature"):
        np.testing.assert_array_equal(getattr(ref, name), getattr(calm_env.mj_model, name))
    # the two front calves can touch each other now (in training no robot geom has a conaffinity bit)
    ids = tuple(sorted(mujoco.mj_name2id(ref, mujoco.mjtObj.mjOBJ_GEOM, g) for g in ("FL_calf", "FR_calf")))
    for model, collide in ((ref, True), (training.model, False)):
        data = mujoco.MjData(model)
        data.qpos[2:4] = 0.5, 1.0  # in the air, upright
        data.qpos[7:] = np.asarray(calm_env.default_joint_pos)
        data.qpos[7], data.qpos[10] = -0.8, 0.8  # both front legs swung inwards: they cross under the trunk
        mujoco.mj_forward(model, data)
        pairs = {tuple(sorted(g)) for g in data.contact.geom[: data.ncon].tolist()}
        assert (ids in pairs) == collide


def test_walk_run_reports_contacts_and_penetration(deployment, tmp_path):
    dep, _ = deployment
    out = run_command(dep, (0.5, 0.0, 0.0), seconds=0.5)
    assert out["steps"] == 25 and not out["fell"]
    assert 0 <= out["non_foot_contacts"] <= out["steps"]
    assert 0.0 <= out["max_body_penetration_m"] <= out["max_penetration_m"] < 0.05


def test_sim2sim_never_imports_jax():
    code = "import sys, legged_rl.sim2sim; print('jax' in sys.modules, 'st_rl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "False"]

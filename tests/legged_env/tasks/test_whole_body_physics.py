"""Whole-body contact physics (legged_env/robots/go1/go1.xml, legged_env/terrain/tracks.py): body parts are stopped
by obstacles in MJX and in plain MuJoCo, contact flags and terminations come from the physics' own contacts, every
contact's friction is the env's randomised terrain friction, joint damping / frictionloss / armature follow the MJCF
and are randomised per env, and the climb segments base_rpy and wall_distance. Uses the session's climb envs
(hard_env: no random perturbations; the default climb env: domain randomisation on)."""

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from mujoco import mjx

from legged_env.terrain import tracks
from tests.legged_env import envs
from tests.legged_env.tasks.test_climb import (
    DET_TRACK,
    batched_track,
    place,
    quat,
    segment,
    step,
)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def hard_start(hard_env):
    return step(hard_env, hard_env.init())


FACE_X, BOX_TOP = 1.0, 0.40  # box 0 of the scenario: near face at x = 1.0, top at 0.40 (above the head)
HEAD = "head"


def carried_head_x(env, engine: str, conaffinity: int = 3) -> np.ndarray:
    """Front-most x of the head sphere over 40 policy steps while the robot, standing in the default pose under the
    PD law, is carried at 0.8 m/s (base velocity set every policy step) towards a box face at ``FACE_X`` whose top
    is above the head: the head is the first part to reach it. ``engine``: "mjx" (the env's MJX model, one env) or
    "mujoco" (plain MuJoCo C on the env's MuJoCo model with MuJoCo's default solver: Newton, 100 iterations, 50
    line-search steps, eulerdamp on). ``conaffinity`` of the colliding box (1: feet only)."""
    m = env.mj_model
    head = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, HEAD)
    radius = float(m.geom_size[head, 0])
    box_pos = np.array([FACE_X + env.track.length / 2, 0.0, BOX_TOP - tracks.BOX_HALF_HEIGHT])
    qpos0 = m.qpos0.copy()
    qpos0[:3] = (FACE_X - 0.29 - 0.15, 0.0, 0.31)  # head front 15 cm before the face, feet on the floor
    qpos0[np.asarray(env.qpos_idx)] = np.asarray(env.default_joint_pos)
    kp, kd, lim = (np.asarray(x, np.float64) for x in (env.kp, env.kd, env.torque_limits))
    qi, vi, default = np.asarray(env.qpos_idx), np.asarray(env.qvel_idx), np.asarray(env.default_joint_pos, np.float64)
    out = []
    if engine == "mujoco":
        # compiled with the box in place: plain MuJoCo's collision culling keeps the world body's compile-time
        # bounds, so a static geom moved afterwards (model.geom_pos) is missed
        placed = f'pos="{box_pos[0]} 0 {box_pos[2]}" contype="0" conaffinity="{conaffinity}"'
        xml = env.model_xml().replace('pos="-100.0 0 -0.5" contype="0" conaffinity="3"', placed, 1)
        assert placed in xml
        model = mujoco.MjModel.from_xml_string(xml)
        model.opt.timestep = m.opt.timestep
        model.opt.iterations, model.opt.ls_iterations = 100, 50
        model.opt.disableflags &= ~int(mujoco.mjtDisableBit.mjDSBL_EULERDAMP)
        data = mujoco.MjData(model)
        data.qpos[:] = qpos0
        for _ in range(40):
            data.qvel[0] = 0.8
            for _ in range(env.decimation):
                q, qd = data.qpos[qi], data.qvel[vi]
                data.ctrl[:] = np.clip(kp * (default - q) - kd * qd, -lim, lim)
                mujoco.mj_step(model, data)
            mujoco.mj_kinematics(model, data)
            out.append(data.geom_xpos[head, 0] + radius)
        return np.array(out)
    model = m.__copy__()
    model.geom_pos[env.collider_geom] = box_pos
    model.geom_conaffinity[env.collider_geom] = conaffinity
    mx = mjx.put_model(model, impl="jax")

    @jax.jit
    def policy_step(d):
        d = d.replace(qvel=d.qvel.at[0].set(0.8))

        def sub(d, _):
            tau = jnp.clip(kp * (default - d.qpos[qi]) - kd * d.qvel[vi], -lim, lim)
            return mjx.step(mx, d.replace(ctrl=tau)), None

        d, _ = jax.lax.scan(sub, d, None, length=env.decimation)
        return mjx.kinematics(mx, d)

    d = mjx.make_data(mx, impl="jax").replace(qpos=jnp.asarray(qpos0, jnp.float32))
    for _ in range(40):
        d = policy_step(d)
        out.append(float(d.geom_xpos[head, 0]) + radius)
    return np.array(out)


@pytest.mark.parametrize("engine", ["mjx", "mujoco"])
def test_a_head_carried_into_a_box_face_is_stopped(hard_env, engine):
    head_x = carried_head_x(hard_env, engine)
    assert head_x[0] < FACE_X - 0.1
    assert head_x.max() < FACE_X + 0.015  # only the soft contact's millimetres inside the face (8 mm seen)
    assert head_x[-1] > FACE_X - 0.03  # it got there and stayed while the base was carried on


def test_a_feet_only_box_lets_the_head_through(hard_env):
    # what the physics did before whole-body contact: the same carry with a box only the feet collide with
    assert carried_head_x(hard_env, "mujoco", conaffinity=1).max() > FACE_X + 0.1  # the feet stop 10 cm behind it


def test_trunk_contact_with_the_floor_ends_the_episode(hard_env, hard_start):
    upside_down = quat(roll=np.pi)
    state = place(hard_env, hard_start, {0: (0.0, 0.0, 0.06, upside_down), 1: (0.0, 0.0, 0.31, quat())})
    state = step(hard_env, state)
    assert bool(state.done[0]) and not bool(state.done[1])
    assert not bool(state.time_out[0])


def test_contact_friction_is_the_envs_randomised_terrain_friction(env_cache):
    env = envs.default_env(env_cache, "climb")
    n = env.num_envs
    state = env.init()
    h = 0.3
    track = batched_track({**DET_TRACK, "box_h": [h, h]}, n)
    # every robot standing on the first box's top (x 1.0-2.2)
    state = place(env, state, {i: (1.6, 0.0, h + 0.31, quat()) for i in range(n)}, info={"track": track})
    for _ in range(5):
        state = step(env, state)
    con = state.data._impl.contact
    geom, dist, friction = np.asarray(con.geom), np.asarray(con.dist), np.asarray(con.friction)
    env_friction = np.asarray(env.dr_params["friction"])[:, 0]
    assert np.ptp(env_friction) > 0.2  # randomised
    feet = set(np.asarray(env.foot_geoms).tolist())
    on_box = (np.isin(geom[..., 0], list(feet)) | np.isin(geom[..., 1], list(feet))) & np.any(
        geom == env.collider_geom, axis=-1
    )
    touching = on_box & (dist < 0)
    assert touching.sum(axis=1).min() >= 2  # feet touch the box top in every env
    for i in range(n):
        np.testing.assert_allclose(friction[i][touching[i], 0], env_friction[i], rtol=1e-6)


def test_joint_damping_frictionloss_armature_follow_the_mjcf_randomised_per_env(env_cache):
    env = envs.default_env(env_cache, "climb")
    dof = np.asarray(env.qvel_idx)
    mj = env.mj_model
    np.testing.assert_allclose(mj.dof_damping[dof], 0.5)
    np.testing.assert_allclose(mj.dof_frictionloss[dof], 0.2)
    np.testing.assert_allclose(mj.dof_armature[dof], [0.00448, 0.00448, 0.0101] * 4)
    dr = env.cfg["domain_rand"]
    for name in ("damping", "frictionloss", "armature"):
        scale = np.asarray(getattr(env.model, f"dof_{name}"))[:, dof] / getattr(mj, f"dof_{name}")[dof]
        lo, hi = dr[f"joint_{name}"]
        assert scale.min() >= lo - 1e-6 and scale.max() <= hi + 1e-6
        assert np.ptp(scale) > 0.25 * (hi - lo)  # per env and joint


def test_base_rpy_and_wall_distance_segments(hard_env, hard_start):
    poses = {0: (0.5, 0.2, 0.31, quat(yaw=0.3, pitch=0.1, roll=-0.2)), 1: (0.5, -0.5, 0.31, quat())}
    state = place(hard_env, hard_start, poses)
    state = step(hard_env, state)
    rpy = segment(hard_env, state.critic_obs, "base_rpy")
    walls = segment(hard_env, state.critic_obs, "wall_distance")
    qpos = np.asarray(state.data.qpos)
    # one step of dynamics moved the robots a little: compare with their stepped pose
    for i in (0, 1):
        mat = np.zeros(9)
        mujoco.mju_quat2Mat(mat, qpos[i, 3:7].astype(np.float64))
        r = mat.reshape(3, 3)
        yaw, pitch, roll = np.arctan2(r[1, 0], r[0, 0]), np.arcsin(-r[2, 0]), np.arctan2(r[2, 1], r[2, 2])
        np.testing.assert_allclose(rpy[i], [roll, pitch, yaw], atol=1e-5)
        np.testing.assert_allclose(walls[i], [0.8 - qpos[i, 1], 0.8 + qpos[i, 1]], atol=1e-5)
    np.testing.assert_allclose(rpy[0], [-0.2, 0.1, 0.3], atol=0.05)
    np.testing.assert_allclose(walls[1], [1.3, 0.3], atol=0.02)

"""Walk task: standing under the default PD targets, foot contacts against MuJoCo, terminations, rewards."""

import copy
import math

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from legged_env.errors import ConfigError
from legged_env.robots.go1 import constants as go1
from legged_env.tasks.walk import config as walk_config
from legged_env.tasks.walk import rewards as R
from tests.legged_env.envs import segment_slices

pytestmark = pytest.mark.timeout(180)

# Nominal standing height from the leg kinematics in the default pose. Hip joints sit at the trunk origin;
# each link rotates (0, 0, -L) about y, so it drops L cos(angle): thigh 0.213 cos(0.8) = 0.148 m, calf at
# 0.8 - 1.5 = -0.7 rad absolute 0.213 cos(0.7) = 0.163 m, plus the 0.02 m foot radius: 0.331 m.
NOMINAL_HEIGHT = 0.213 * math.cos(0.8) + 0.213 * math.cos(0.8 - 1.5) + go1.FOOT_RADIUS
# Measured: the base settles at 0.301 m (the PD joints sag ~3 cm under the 13 kg robot), upright within
# 0.05 rad, base speed < 0.015 m/s and rate < 0.025 rad/s after 4 s. Bands are physical, not fitted:
# below nominal (sag) but well above a crouch, within 3 degrees of upright, nearly at rest.
HEIGHT_BAND = (0.28, NOMINAL_HEIGHT + 0.005)
STAND_STEPS = 200  # 4 s at dt = 0.02


def _stand(env, spawn_height: float | None):
    state = env.init()
    if spawn_height is not None:
        state = state.replace(data=state.data.replace(qpos=state.data.qpos.at[:, 2].set(spawn_height)))
    done = jnp.zeros(env.num_envs, dtype=bool)
    zeros = jnp.zeros((env.num_envs, env.num_actions))
    for _ in range(STAND_STEPS):
        state = env.step_batched(state, zeros)
        done |= state.done
    return state, done


@pytest.mark.parametrize(
    "spawn_height",
    [
        pytest.param(None, id="default_spawn"),
        pytest.param(0.45, id="drop_from_0.45m"),
    ],
)
def test_robot_lands_and_stands_under_default_targets(calm_env, spawn_height):
    env = calm_env
    state, done = _stand(env, spawn_height)
    assert not bool(done.any()), f"envs terminated: {np.where(np.asarray(done))[0].tolist()}"
    c = segment_slices(env.critic_obs.segments)
    critic = np.asarray(state.critic_obs)
    height = np.asarray(state.data.qpos[:, 2])
    assert np.all((height > HEIGHT_BAND[0]) & (height < HEIGHT_BAND[1])), height
    assert np.all(critic[:, c["projected_gravity"]][:, 2] < -0.97)
    assert np.all(critic[:, c["foot_contacts"]] == 1.0)
    assert np.abs(np.asarray(state.data.qvel[:, :3])).max() < 0.05
    assert np.abs(np.asarray(state.data.qvel[:, 3:6])).max() < 0.1


# ---------------------------------------------------------------------------------------------- foot contacts
def _axis_quat(axis: int, angle: float) -> np.ndarray:
    q = np.zeros(4)
    q[0], q[1 + axis] = math.cos(angle / 2), math.sin(angle / 2)
    return q


def _mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(4)
    mujoco.mju_mulQuat(out, a, b)
    return out


def _mujoco_foot_contacts(env, d) -> np.ndarray:
    """(4,) bool: MuJoCo's collision detection found a foot-floor contact."""
    found = np.zeros(4, dtype=bool)
    for i in range(d.ncon):
        pair = {int(d.contact[i].geom1), int(d.contact[i].geom2)}
        for f, geom in enumerate(env.foot_geoms):
            found[f] |= pair == {int(geom), env.floor_geom}
    return found


def _env_foot_contacts(env, info, qpos: np.ndarray, d) -> np.ndarray:
    """(4,) bool: the task's foot contact flag for the pose MuJoCo computed in ``d``."""
    data = env._template.replace(
        qpos=jnp.asarray(qpos, dtype=jnp.float32),
        geom_xpos=jnp.asarray(d.geom_xpos, dtype=jnp.float32),
        geom_xmat=jnp.asarray(d.geom_xmat.reshape(-1, 3, 3), dtype=jnp.float32),
    )
    zeros = jnp.zeros(env.num_actions)
    q = env.quantities(data, info, zeros, zeros, jnp.zeros(()))
    return np.asarray(q["foot_contacts"]) > 0.5


def test_foot_contact_flag_agrees_with_mujoco_on_random_standing_poses(calm_env):
    env = calm_env
    info = jax.tree.map(lambda x: x[0], env.init().info)
    m, d = env.mj_model, mujoco.MjData(env.mj_model)
    rng = np.random.default_rng(0)
    default = np.array(go1.DEFAULT_JOINT_POS)
    counts = {True: 0, False: 0}
    for _ in range(12):
        qpos = m.qpos0.copy()
        qpos[2] = rng.uniform(0.27, 0.35)
        tilt = _mul(_axis_quat(0, rng.uniform(-0.15, 0.15)), _axis_quat(1, rng.uniform(-0.15, 0.15)))
        qpos[3:7] = _mul(_axis_quat(2, rng.uniform(-math.pi, math.pi)), tilt)
        qpos[np.asarray(env.qpos_idx)] = default + rng.uniform(-0.3, 0.3, size=12)
        d.qpos[:] = qpos
        mujoco.mj_forward(m, d)
        mj = _mujoco_foot_contacts(env, d)
        flag = _env_foot_contacts(env, info, qpos, d)
        clearance = d.geom_xpos[env.foot_geoms, 2] - go1.FOOT_RADIUS
        # The task counts a foot within 5 mm of the floor as touching (MJX contacts flicker); MuJoCo needs
        # penetration. Outside that band the two must agree.
        outside = (clearance < 0.0) | (clearance >= 0.005)
        np.testing.assert_array_equal(flag[outside], mj[outside], err_msg=f"clearance {clearance}")
        assert np.all(flag[~outside])
        for f in mj[outside]:
            counts[bool(f)] += 1
    assert counts[True] >= 5 and counts[False] >= 5, counts  # both cases were really checked


def test_stepped_foot_contact_flag_matches_mujoco_on_the_state_qpos(calm_env):
    env = calm_env
    m, d = env.mj_model, mujoco.MjData(env.mj_model)
    c = segment_slices(env.critic_obs.segments)["foot_contacts"]
    state = env.init()
    for _ in range(40):
        state = env.step_batched(state, jnp.zeros((env.num_envs, env.num_actions)))
    key = jax.random.PRNGKey(0)
    for _ in range(10):
        key, sub = jax.random.split(key)
        state = env.step_batched(state, jax.random.normal(sub, (env.num_envs, env.num_actions)))
        flags = np.asarray(state.critic_obs[:, c]) > 0.5
        for e in np.where(~np.asarray(state.done))[0]:
            d.qpos[:] = np.asarray(state.data.qpos[e])
            mujoco.mj_forward(m, d)
            clearance = d.geom_xpos[env.foot_geoms, 2] - go1.FOOT_RADIUS
            outside = (clearance < 0.0) | (clearance >= 0.005)
            np.testing.assert_array_equal(flags[e][outside], _mujoco_foot_contacts(env, d)[outside])


# ---------------------------------------------------------------------------------------------- terminations
def _termination_q(tilt: float = 0.0, **contacts) -> dict:
    q = {f"{g}_contact": jnp.array(contacts.get(g, False)) for g in ("trunk", "thigh", "calf")}
    q["projected_gravity"] = jnp.array([math.sin(tilt), 0.0, -math.cos(tilt)])
    return q


def test_terminates_on_trunk_contact_and_tilt_only(walk_env):
    assert walk_env.cfg["terminations"] == {"max_tilt": 1.0, "contact_geoms": ["trunk"]}
    assert not bool(walk_env.terminated(_termination_q()))
    assert bool(walk_env.terminated(_termination_q(trunk=True)))
    assert not bool(walk_env.terminated(_termination_q(thigh=True, calf=True)))  # penalised, not terminal
    assert not bool(walk_env.terminated(_termination_q(tilt=0.9)))
    assert bool(walk_env.terminated(_termination_q(tilt=1.1)))


def test_soft_joint_range_is_a_fraction_of_the_xml_range(walk_env):
    # go1.xml thigh range [-0.686, 4.501]: centre 1.9075, half-width 2.5935 * 0.9.
    lo, hi = np.asarray(walk_env.soft_joint_range[1])
    assert lo == pytest.approx(1.9075 - 2.5935 * 0.9, abs=1e-5) and hi == pytest.approx(1.9075 + 2.5935 * 0.9, abs=1e-5)


def test_sampled_commands_lie_in_ranges_and_small_planar_ones_are_zero(walk_env):
    cmds = np.asarray(jax.vmap(walk_env._sample_commands)(jax.random.split(jax.random.PRNGKey(3), 2000)))
    c = walk_env.cfg["commands"]
    for i, key in enumerate(("lin_vel_x", "lin_vel_y", "ang_vel_yaw")):
        assert np.all((cmds[:, i] >= c[key][0]) & (cmds[:, i] <= c[key][1]))
    planar = np.linalg.norm(cmds[:, :2], axis=1)
    assert np.all((planar == 0.0) | (planar >= c["zero_below"]))
    assert 0 < np.sum(planar == 0.0) < len(cmds)


def test_turn_in_place_fraction_zeroes_planar_commands_of_that_fraction(walk_env):
    env = copy.copy(walk_env)
    env.cfg = {**walk_env.cfg, "commands": {**walk_env.cfg["commands"], "zero_below": 0.0}}
    keys = jax.random.split(jax.random.PRNGKey(4), 4000)
    for frac in (0.0, 0.5):
        env.cfg["commands"]["turn_in_place_fraction"] = frac
        cmds = np.asarray(jax.vmap(env._sample_commands)(keys))
        in_place = np.all(cmds[:, :2] == 0.0, axis=1)
        assert np.mean(in_place) == pytest.approx(frac, abs=0.03)
        if frac:  # the yaw rate is still drawn over its range
            assert np.mean(np.abs(cmds[in_place, 2]) > 0.5) == pytest.approx(0.5, abs=0.05)


def test_turn_in_place_fraction_outside_zero_one_is_a_config_error():
    from legged_env.tasks.walk.task import WalkTask

    cfg = walk_config.default_config()
    cfg["commands"]["turn_in_place_fraction"] = 1.5
    with pytest.raises(ConfigError, match=r"env.commands.turn_in_place_fraction in x.yaml: 1.5 is not in \[0, 1\]"):
        WalkTask(cfg, num_envs=2, source="x.yaml")


# ---------------------------------------------------------------------------------------------- reward functions
CFG = {"tracking_sigma": 0.25, "feet_air_time_target": 0.5}


def test_tracking_rewards_are_one_at_perfect_tracking_and_exp_minus_one_at_sqrt_sigma():
    q = {
        "commands": jnp.array([1.0, 0.0, 0.5]),
        "base_lin_vel": jnp.array([1.0, 0.0, 9.0]),  # z and roll/pitch rates are not tracked
        "base_ang_vel": jnp.array([3.0, 3.0, 0.5]),
    }
    assert float(R.tracking_lin_vel(q, CFG)) == pytest.approx(1.0)
    assert float(R.tracking_ang_vel(q, CFG)) == pytest.approx(1.0)
    q["base_lin_vel"], q["base_ang_vel"] = jnp.array([0.5, 0.0, 9.0]), jnp.array([3.0, 3.0, 0.0])
    assert float(R.tracking_lin_vel(q, CFG)) == pytest.approx(math.exp(-1.0), rel=1e-6)
    assert float(R.tracking_ang_vel(q, CFG)) == pytest.approx(math.exp(-1.0), rel=1e-6)


def test_feet_air_time_paid_at_touch_down_only_when_moving():
    q = {
        "feet_air_time": jnp.array([0.6, 0.3, 0.9, 0.0]),
        "feet_first_contact": jnp.array([True, True, False, False]),
        "commands": jnp.array([0.5, 0.0, 0.0]),
    }
    assert float(R.feet_air_time(q, CFG)) == pytest.approx((0.6 - 0.5) + (0.3 - 0.5))
    q["commands"] = jnp.array([0.0, 0.05, 1.0])
    assert float(R.feet_air_time(q, CFG)) == 0.0


def test_penalty_terms_on_hand_worked_values():
    q = {
        "projected_gravity": jnp.array([0.6, 0.0, -0.8]),
        "joint_pos": jnp.array([1.2, -1.5, 0.3]),
        "soft_joint_range": jnp.array([[-1.0, 1.0]] * 3),
        "dof_pos": jnp.array([0.1, -0.2, 0.0]),
        "commands": jnp.zeros(3),
        "actions": jnp.array([1.0, 0.0]),
        "last_actions": jnp.array([0.0, 2.0]),
        "leg_contacts": jnp.array([True, False, True]),
        "terminated": jnp.array(True),
    }
    assert float(R.orientation(q, CFG)) == pytest.approx(0.36)
    assert float(R.dof_pos_limits(q, CFG)) == pytest.approx(0.2 + 0.5)
    assert float(R.stand_still(q, CFG)) == pytest.approx(0.3)
    assert float(R.action_rate(q, CFG)) == pytest.approx(1.0 + 4.0)
    assert float(R.collision(q, CFG)) == 2.0
    assert float(R.termination(q, CFG)) == 1.0
    q["commands"] = jnp.array([0.5, 0.0, 0.0])
    assert float(R.stand_still(q, CFG)) == 0.0


def test_every_walk_reward_has_a_default_scale():
    from legged_env.tasks.walk.config import default_config

    assert set(default_config()["rewards"]["scales"]) == set(R.REWARDS)

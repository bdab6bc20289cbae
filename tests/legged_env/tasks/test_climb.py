"""climb: obstacle tracks (legged_env/terrain/tracks.py), the height curriculum, the engaging_block, height_scan
and forward_depth segments against MuJoCo's own ray caster, hard vs soft (virtual) obstacles, goals and config errors.

Two envs are used (each costs one JAX compile of its step), both session fixtures of tests/legged_env/conftest.py
shared with other test files and, through the persistent cache, with the climb script tests: ``hard_env`` (8 envs,
physical boxes, every env at its own level) and ``soft_env`` (4 envs, virtual boxes, depth latency 2, curriculum
off). Tests that need a known track write it into ``state.info["track"]``: the box geoms follow it
(``episode_model``), so no recompile.
"""

import copy
import math

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from legged_env.errors import ConfigError
from legged_env.tasks import get_task
from legged_env.terrain import curriculum, raycast, tracks
from tests.legged_env.envs import DEPTH_HW, climb_config, segment_slices

pytestmark = pytest.mark.timeout(600)

DEVICE = jax.devices()[0]
TERRAIN_AND_FLOOR = np.array([1, 0, 1, 0, 0, 0], np.uint8)  # floor: group 0, boxes and walls: group 2
# The deterministic track of the physics tests: run-up 1.0, boxes 1.2 long and 0.3 high, gaps 2.0.
DET_TRACK = {"box_x0": [1.0, 4.2], "box_h": [0.3, 0.3], "gap": [2.0, 2.0]}
LAST_EDGE, GOAL_X = 5.4, 6.0  # 4.2 + 1.2, then + goal_margin 0.6


def commit(tree):
    """Puts arrays on the device explicitly and strongly typed: the env's jitted step compiles once for committed,
    strongly typed inputs (what it returns) and once more for uncommitted ones (host-made arrays) or weakly typed
    ones (soft_env's blank depth buffer from ``init``)."""
    return jax.device_put(jax.tree.map(lambda x: jnp.asarray(x, x.dtype), tree), DEVICE)


def step(env, state, actions=None):
    if actions is None:
        actions = np.zeros((env.num_envs, env.num_actions), np.float32)
    return env.step_batched(commit(state), commit(jnp.asarray(actions, jnp.float32)))


@pytest.fixture(scope="module")
def hard_start(hard_env):
    """hard_env one step after spawning (levels 0..7, their own random tracks, every box geom placed)."""
    state = step(hard_env, hard_env.init())
    assert not bool(state.done.any())
    return state


@pytest.fixture(scope="module")
def soft_start(soft_env):
    state = soft_env.init()
    return state, step(soft_env, state)


def quat(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """(w, x, y, z) of yaw about z, then pitch about y (positive: nose down), then roll about x."""
    out = np.array([1.0, 0.0, 0.0, 0.0])
    for axis, angle in ((2, yaw), (1, pitch), (0, roll)):
        q = np.zeros(4)
        mujoco.mju_axisAngle2Quat(q, np.eye(3)[axis], angle)
        mujoco.mju_mulQuat(out, out.copy(), q)
    return out


def quat_to_mat(q) -> np.ndarray:
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, np.asarray(q, np.float64))
    return mat.reshape(3, 3)


def place(env, state, poses: dict, base_vel: dict | None = None, info: dict | None = None):
    """Puts env i's robot at ``poses[i] = (x, y, z, quat)`` in the default joint pose at rest; ``base_vel[i]`` sets
    its free joint's velocity (6,); ``info`` entries replace whole batched info arrays."""
    qpos, qvel = np.array(state.data.qpos), np.array(state.data.qvel)
    for i, (x, y, z, q) in poses.items():
        qpos[i, :3], qpos[i, 3:7] = (x, y, z), q
        qpos[i, np.asarray(env.qpos_idx)] = np.asarray(env.default_joint_pos)
        qvel[i] = 0.0
    for i, v in (base_vel or {}).items():
        qvel[i, :6] = v
    state = state.replace(
        data=state.data.replace(qpos=jnp.asarray(qpos, jnp.float32), qvel=jnp.asarray(qvel, jnp.float32)),
        info={**state.info, **(info or {})},
    )
    return commit(state)


def batched_track(track: dict, num_envs: int) -> dict:
    return {k: jnp.tile(jnp.asarray(v, jnp.float32), (num_envs, 1)) for k, v in track.items()}


def env_track(state, i: int) -> dict:
    return {k: np.asarray(v[i]) for k, v in state.info["track"].items()}


def segment(env, obs, name: str) -> np.ndarray:
    """``(num_envs, *shape)`` segment ``name`` of a flat critic observation (divided by its scale)."""
    sl = segment_slices(env.critic_obs.segments)[name]
    scale = float(env.cfg["observations"]["critic"][name].get("scale", 1.0))
    return np.asarray(obs)[:, sl].reshape(-1, *env.critic_obs.segments[name]) / scale


# ---------------------------------------------------------------------------------------------- MuJoCo reference
def ray_scene(env, track: dict, qpos) -> tuple[mujoco.MjModel, mujoco.MjData]:
    """A plain MuJoCo copy of ``env``'s model with the boxes of ``track``, the robot at ``qpos`` but moved to geom
    group 1 (excluded from the rays, which see groups 0 and 2: the floor, the boxes and the walls)."""
    m = copy.deepcopy(env.mj_model)
    m.geom_pos[np.asarray(env.box_geoms)] = np.asarray(
        env.track.geom_pos({k: jnp.asarray(v) for k, v in track.items()})
    )
    m.geom_group[m.geom_bodyid != 0] = 1
    d = mujoco.MjData(m)
    d.qpos[:] = np.asarray(qpos, np.float64)
    mujoco.mj_forward(m, d)
    return m, d


def mj_ray(m, d, pnt, vec) -> tuple[float, int]:
    geomid = np.zeros(1, np.int32)
    dist = mujoco.mj_ray(
        m, d, np.asarray(pnt, np.float64), np.asarray(vec, np.float64), TERRAIN_AND_FLOOR, 1, -1, geomid
    )
    return dist, int(geomid[0])


def mj_heights(m, d, xy: np.ndarray) -> np.ndarray:
    """Terrain height at world points ``xy (..., 2)`` by rays cast straight down from 5 m."""
    out = np.zeros(xy.shape[:-1])
    for idx in np.ndindex(*xy.shape[:-1]):
        dist, geom = mj_ray(m, d, [*xy[idx], 5.0], [0.0, 0.0, -1.0])
        assert dist >= 0 and m.geom_group[geom] in (0, 2)  # the floor is everywhere
        out[idx] = 5.0 - dist
    return out


def mj_depth(m, d, cfg: dict, qpos) -> tuple[np.ndarray, np.ndarray]:
    """Reference z-depth (H, W) of the trunk camera at ``qpos`` and hit geom ids (-1: nothing within max_range)."""
    fd = cfg["forward_depth"]
    rot = quat_to_mat(qpos[3:7])
    c, s = math.cos(fd["pitch"]), math.sin(fd["pitch"])
    cam_pos = np.asarray(qpos[:3], np.float64) + rot @ np.asarray(fd["position"])
    cam_rot = rot @ np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # camera x = trunk x pitched down
    dirs = raycast.camera_ray_dirs(
        *DEPTH_HW, math.radians(fd["horizontal_fov_deg"]), math.radians(fd["vertical_fov_deg"])
    )
    max_range = fd["max_range"]
    depth, ids = np.full(DEPTH_HW, max_range), np.full(DEPTH_HW, -1)
    for idx in np.ndindex(*DEPTH_HW):
        dist, geom = mj_ray(m, d, cam_pos, cam_rot @ dirs[idx])
        if 0 <= dist < max_range:
            depth[idx], ids[idx] = dist * dirs[idx][0], geom
    return depth, ids


# ---------------------------------------------------------------------------------------------- 1. track geometry
def test_sampled_tracks_follow_levels_ranges_and_spacing(hard_env, hard_start):
    t = hard_env.cfg["terrain"]
    level = np.asarray(hard_start.info["level"])
    np.testing.assert_array_equal(level, np.arange(8))  # spread: env i at level i
    tr = {k: np.asarray(v) for k, v in hard_start.info["track"].items()}
    assert np.all((tr["box_x0"][:, 0] >= t["run_up"][0]) & (tr["box_x0"][:, 0] <= t["run_up"][1]))
    assert np.all((tr["gap"] >= t["gap"][0]) & (tr["gap"] <= t["gap"][1]))
    np.testing.assert_allclose(np.diff(tr["box_x0"], axis=1)[:, 0], t["obstacle_length"] + tr["gap"][:, 0], atol=1e-5)
    nominal = t["height"][0] + (t["height"][1] - t["height"][0]) * level / (t["num_levels"] - 1)
    assert np.all(np.abs(tr["box_h"] - nominal[:, None]) <= t["height_noise"] + 1e-6)
    assert np.all(np.diff(tr["box_h"].mean(axis=1)) > 0)  # level steps (0.044 m) exceed the noise (+-0.02 m)
    assert len({tuple(r) for r in tr["box_x0"].round(4)}) == 8  # every env has its own track


def test_track_sampling_over_many_keys():
    spec = tracks.TrackSpec({**get_task("climb").default_config()["terrain"], "height": [0.0, 0.1], "num_levels": 3})
    levels = jnp.arange(600) % 3
    tr = jax.vmap(spec.sample)(jax.random.split(jax.random.PRNGKey(3), 600), levels)
    tr = {k: np.asarray(v) for k, v in tr.items()}
    nominal = 0.05 * np.asarray(levels)[:, None]
    assert np.all(np.abs(tr["box_h"] - nominal) <= 0.02 + 1e-6)
    assert np.all(tr["box_h"] >= 0.01 - 1e-7) and np.isclose(tr["box_h"].min(), 0.01)  # level 0 floored at 1 cm
    assert np.all(np.diff(tr["box_x0"], axis=1) >= 1.2 + 1.5 - 1e-5) and tr["box_x0"][:, 0].min() >= 1.0
    assert tr["box_x0"][:, 0].max() > 1.9 and tr["gap"].min() < 1.55 and tr["gap"].max() > 2.45  # ranges are covered


def test_trackspec_boxes_are_obstacles_then_walls():
    spec = tracks.TrackSpec(get_task("climb").default_config()["terrain"])
    track = {"box_x0": jnp.array([1.0, 4.2]), "box_h": jnp.array([0.3, 0.25]), "gap": jnp.array([2.0, 1.7])}
    x_hi = 2.0 + 2 * (1.2 + 2.5) + 2.0  # longest run-up + boxes + gaps, 2 m to spare
    expected = [
        [1.0, -0.8, 0.3 - 1.0, 2.2, 0.8, 0.3],
        [4.2, -0.8, 0.25 - 1.0, 5.4, 0.8, 0.25],
        [-2.0, 0.8, -0.5, x_hi, 0.85, 0.6],
        [-2.0, -0.85, -0.5, x_hi, -0.8, 0.6],
    ]
    np.testing.assert_allclose(np.asarray(spec.boxes(track)), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(spec.geom_pos(track)), [[1.6, 0.0, -0.2], [4.8, 0.0, -0.25]], atol=1e-6)
    assert float(spec.goal_x(track)) == pytest.approx(6.0)


@pytest.mark.parametrize(("virtual", "walls_collide"), [(False, True), (True, True), (False, False)])
def test_collision_flags_follow_the_terrain_config(virtual, walls_collide):
    cfg = get_task("climb").default_config()["terrain"]
    cfg.update(virtual_obstacles=virtual, walls_collide=walls_collide)
    spec = tracks.TrackSpec(cfg)
    m = mujoco.MjModel.from_xml_string(f"<mujoco><worldbody>{spec.mjcf_geoms()}</worldbody></mujoco>")

    def affinity(name):
        return int(m.geom_conaffinity[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, name)])

    # the obstacle boxes and wall boxes are visual; one collider box and two wall planes carry the physics
    assert [affinity(f"{tracks.BOX_PREFIX}{k}") for k in range(2)] == [0, 0]
    assert [affinity(n) for n in tracks.WALL_NAMES] == [0, 0]
    assert affinity(tracks.COLLIDER) == (0 if virtual else 3)  # both robot bits: feet 1, body 2
    planes = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"{n}_plane") for n in tracks.WALL_NAMES]
    assert planes == ([m.ngeom - 2, m.ngeom - 1] if walls_collide else [-1, -1])


def test_model_geoms_match_trackspec(hard_env):
    m, spec = hard_env.mj_model, hard_env.track
    boxes = np.asarray(hard_env.box_geoms)
    np.testing.assert_allclose(m.geom_size[boxes], [[0.6, 0.8, 0.5]] * 2, atol=1e-9)
    walls = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, n) for n in tracks.WALL_NAMES]
    aabb = np.concatenate([m.geom_pos[walls] - m.geom_size[walls], m.geom_pos[walls] + m.geom_size[walls]], axis=1)
    np.testing.assert_allclose(aabb, np.asarray(spec.walls), atol=1e-5)
    collider = hard_env.collider_geom
    assert list(m.geom_group[[0, *boxes, *walls, collider]]) == [0, 2, 2, 2, 2, 2]
    assert m.geom_conaffinity[boxes].tolist() == [0, 0]  # visual; the collider carries the physics
    assert m.geom_conaffinity[collider] == 3  # hard: feet (contype 1) and body (contype 2) collide with it
    np.testing.assert_allclose(m.geom_size[collider], [0.6, 0.8, 0.5], atol=1e-9)
    # the wall planes sit at the walls' inner faces, normals into the track
    planes = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"{n}_plane") for n in tracks.WALL_NAMES]
    np.testing.assert_allclose(m.geom_pos[planes][:, 1], [0.8, -0.8], atol=1e-6)
    normals = np.stack([np.asarray(m.geom_quat[p]) for p in planes])
    z_axes = []
    for qv in normals:
        mat = np.zeros(9)
        mujoco.mju_quat2Mat(mat, qv)
        z_axes.append(mat.reshape(3, 3)[:, 2])
    np.testing.assert_allclose(z_axes, [[0, -1, 0], [0, 1, 0]], atol=1e-6)


def test_box_geoms_in_the_physics_follow_each_envs_track(hard_env, hard_start):
    expected = np.asarray(jax.vmap(hard_env.track.geom_pos)(hard_start.info["track"]))
    actual = np.asarray(hard_start.data.geom_xpos)[:, np.asarray(hard_env.box_geoms)]
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    tops = actual[:, :, 2] + tracks.BOX_HALF_HEIGHT
    np.testing.assert_allclose(tops, np.asarray(hard_start.info["track"]["box_h"]), atol=1e-5)
    assert np.ptp(tops[:, 0]) > 0.25  # one MJX model, eight different obstacle heights
    # the one colliding box is the obstacle nearest each robot (at the start: the first one)
    collider = np.asarray(hard_start.data.geom_xpos)[:, hard_env.collider_geom]
    np.testing.assert_allclose(collider, expected[:, 0], atol=1e-5)


def test_collider_follows_the_obstacle_nearest_the_base():
    spec = tracks.TrackSpec(get_task("climb").default_config()["terrain"])
    track = {"box_x0": jnp.array([1.0, 4.0]), "box_h": jnp.array([0.3, 0.2]), "gap": jnp.array([1.8, 2.0])}
    # box 0 spans x 1.0-2.2, box 1 4.0-5.2: the switch is mid-gap, at x = 3.1
    for base_x, k in [(0.0, 0), (1.5, 0), (3.05, 0), (3.15, 1), (4.5, 1), (9.0, 1)]:
        np.testing.assert_allclose(spec.collider_pos(track, jnp.asarray(base_x)), spec.geom_pos(track)[k], atol=1e-6)


# ---------------------------------------------------------------------------------------------- 2. curriculum
def test_next_level_up_on_success_down_on_failure():
    key = jax.random.PRNGKey(0)
    level = jnp.array([0, 3, 8, 0, 3, 9])
    success = jnp.array([True, True, True, False, False, False])
    new = jax.vmap(curriculum.next_level, in_axes=(0, 0, None, None))(level, success, key, 10)
    assert new.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(new), [1, 4, 9, 0, 2, 8])


def test_top_level_success_goes_to_a_random_level():
    keys = jax.random.split(jax.random.PRNGKey(1), 300)
    new = np.asarray(jax.vmap(lambda k: curriculum.next_level(jnp.array(9), jnp.array(True), k, 10))(keys))
    assert new.min() >= 0 and new.max() <= 9
    assert len(np.unique(new)) >= 8  # spread over the levels, not stuck at the top
    assert int(curriculum.next_level(jnp.array(0), jnp.array(True), keys[0], 1)) == 0  # a single level stays


def test_initial_levels_low_and_spread():
    low = np.asarray(curriculum.initial_levels(jax.random.PRNGKey(2), 500, 10, "low", 2))
    assert set(np.unique(low)) == {0, 1, 2}
    capped = np.asarray(curriculum.initial_levels(jax.random.PRNGKey(2), 500, 3, "low", 7))
    assert set(np.unique(capped)) == {0, 1, 2}  # max_level beyond the top is capped
    spread = curriculum.initial_levels(jax.random.PRNGKey(2), 13, 5, "spread", 2)
    np.testing.assert_array_equal(np.asarray(spread), np.arange(13) % 5)


UPSIDE_DOWN = quat(roll=math.pi)


@pytest.fixture(scope="module")
def outcome_state(hard_env, hard_start):
    """One step of eight outcomes, env i at level i: 0 time-out at level 0, 1 upside down, 2 time-out, 3 past
    the goal, 4 past the goal but upside down, 5 standing on, 6 off the track (beyond the wall), 7 past the goal."""
    goal = np.asarray(jax.vmap(hard_env.track.goal_x)(hard_start.info["track"]))
    upright = quat()
    poses = {
        1: (0.0, 0.0, 0.5, UPSIDE_DOWN),
        3: (goal[3] + 0.3, 0.0, 0.34, upright),
        4: (goal[4] + 0.3, 0.0, 0.5, UPSIDE_DOWN),
        6: (0.5, 1.0, 0.34, upright),
        7: (goal[7] + 0.3, 0.0, 0.34, upright),
    }
    steps = np.asarray(hard_start.info["step"]).copy()
    steps[[0, 2]] = hard_env.max_episode_length - 1
    return step(hard_env, place(hard_env, hard_start, poses, info={"step": jnp.asarray(steps)}))


def test_levels_follow_episode_outcomes(outcome_state):
    after = outcome_state
    np.testing.assert_array_equal(np.asarray(after.done), [1, 1, 1, 1, 1, 0, 1, 1])
    np.testing.assert_array_equal(np.asarray(after.time_out), [1, 0, 1, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(np.asarray(after.metrics["level"]), np.arange(8))  # the episode that ended
    np.testing.assert_array_equal(np.asarray(after.info["level"]), [0, 0, 1, 4, 3, 5, 5, 8])
    # the new episodes' tracks are sampled at the new levels
    h = np.asarray(after.info["track"]["box_h"])
    nominal = 0.05 + 0.4 * np.asarray(after.info["level"]) / 9
    assert np.all(np.abs(h - nominal[:, None]) <= 0.02 + 1e-6)
    assert np.asarray(after.info["step"]).tolist() == [0, 0, 0, 0, 0, 2, 0, 0]


def test_goal_reached_is_a_truncation_with_every_obstacle_cleared(outcome_state):
    after = outcome_state
    m = after.metrics
    np.testing.assert_array_equal(np.asarray(m["goal_reached"]), [0, 0, 0, 1, 1, 0, 0, 1])
    np.testing.assert_array_equal(np.asarray(m["obstacles_cleared"]), [0, 0, 0, 4, 4, 0, 0, 4])
    # the reset robots are back at the spawn point with a fresh progress record
    qpos = np.asarray(after.data.qpos)
    np.testing.assert_allclose(qpos[[3, 7], :3], [[0.0, 0.0, 0.34]] * 2, atol=1e-6)
    assert np.all(np.asarray(after.info["max_x"])[[3, 7]] == 0.0)


@pytest.fixture(scope="module")
def soft_outcome(soft_env, soft_start):
    """soft_env, one step after its first: env 0 times out, 1 passes the goal, 2 is upside down, 3 stands on."""
    _, start = soft_start
    goal = float(soft_env.track.goal_x(env_track(start, 1)))
    steps = np.asarray(start.info["step"]).copy()
    steps[0] = soft_env.max_episode_length - 1
    poses = {1: (goal + 0.3, 0.0, 0.34, quat()), 2: (0.0, 0.0, 0.5, UPSIDE_DOWN)}
    return step(soft_env, place(soft_env, start, poses, info={"step": jnp.asarray(steps)}))


def test_curriculum_off_keeps_levels(soft_outcome):
    after = soft_outcome
    np.testing.assert_array_equal(np.asarray(after.done), [1, 1, 1, 0])
    np.testing.assert_array_equal(np.asarray(after.metrics["goal_reached"]), [0, 1, 0, 0])
    np.testing.assert_array_equal(np.asarray(after.info["level"]), [0, 1, 2, 3])


# ---------------------------------------------------------------------------------------------- 3-4. scans and depth
@pytest.fixture(scope="module")
def posed_state(hard_env, hard_start):
    """hard_env with every robot at a pose over its own random track, one step later (poses: before box 1, on it,
    over its jump-down edge nose down, before box 2, over box 2 rolled, in the run-out facing the left wall, at
    the start nose up near the right wall, high above the run-up)."""
    tr = {k: np.asarray(v) for k, v in hard_start.info["track"].items()}
    x0, h, gap = tr["box_x0"], tr["box_h"], tr["gap"]
    poses = {
        0: (x0[0, 0] - 0.63, 0.0, 0.34, quat()),
        1: (x0[1, 0] + 0.47, 0.1, h[1, 0] + 0.36, quat(yaw=0.2)),
        2: (x0[2, 0] + 1.05, -0.15, h[2, 0] + 0.6, quat(yaw=-0.3, pitch=0.2)),
        3: (x0[3, 0] + 1.2 + gap[3, 0] - 0.43, 0.2, 0.34, quat(yaw=0.3)),
        4: (x0[4, 1] + 0.93, 0.0, h[4, 1] + 0.5, quat(roll=0.3)),
        5: (x0[5, 1] + 1.73, 0.3, 0.34, quat(yaw=0.5)),
        6: (0.3, -0.4, 0.45, quat(yaw=-0.4, pitch=-0.5)),
        7: (x0[7, 0] - 0.23, 0.0, 1.5, quat(yaw=0.1)),
    }
    state = step(hard_env, place(hard_env, hard_start, poses))
    assert not bool(state.done.any())
    return state


def test_height_scan_matches_mj_ray(hard_env, posed_state):
    hs = hard_env.cfg["height_scan"]
    scan = segment(hard_env, posed_state.critic_obs, "height_scan")[:, 0]  # (8, num_x, num_y)
    local = np.stack(
        np.meshgrid(np.linspace(*hs["x_range"], hs["num_x"]), np.linspace(*hs["y_range"], hs["num_y"]), indexing="ij"),
        axis=-1,
    )
    qpos = np.asarray(posed_state.data.qpos, np.float64)
    kinds = set()
    for i in range(8):
        track = env_track(posed_state, i)
        m, d = ray_scene(hard_env, track, qpos[i])
        heading = quat_to_mat(qpos[i, 3:7])[:, 0]
        yaw = math.atan2(heading[1], heading[0])
        rot = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
        world = qpos[i, :2] + local @ rot.T
        expected = np.clip(mj_heights(m, d, world) - qpos[i, 2], -hs["clip"], hs["clip"])
        edges_x = np.concatenate([track["box_x0"], track["box_x0"] + 1.2])
        near_edge = np.min(np.abs(world[..., :1] - edges_x), axis=-1) < 1e-3
        near_edge |= np.min(np.abs(np.abs(world[..., 1:]) - np.array([0.8, 0.85])), axis=-1) < 1e-3
        assert near_edge.sum() < 3
        np.testing.assert_allclose(scan[i][~near_edge], expected[~near_edge], atol=1e-4, err_msg=f"env {i}")
        height = expected + qpos[i, 2]
        kinds |= {"floor"} if np.any(np.isclose(height, 0.0)) else set()
        kinds |= {"box"} if np.any(np.isclose(height, track["box_h"][:, None, None], atol=1e-5)) else set()
        kinds |= {"wall"} if np.any(np.isclose(height, 0.6)) else set()
    assert kinds == {"floor", "box", "wall"}
    assert np.all(scan[7] == -1.0)  # 1.5 m above the run-up: clipped
    np.testing.assert_allclose(scan[0, :4], -np.asarray(posed_state.data.qpos)[0, 2], atol=1e-6)  # flat behind


def test_forward_depth_matches_mj_ray(hard_env, posed_state):
    depth = segment(hard_env, posed_state.critic_obs, "forward_depth")[:, 0]  # (8, H, W)
    qpos = np.asarray(posed_state.data.qpos, np.float64)
    hits = []
    for i in range(8):
        m, d = ray_scene(hard_env, env_track(posed_state, i), qpos[i])
        expected, ids = mj_depth(m, d, hard_env.cfg, qpos[i])
        np.testing.assert_allclose(depth[i], expected, atol=1e-4, err_msg=f"env {i}")
        hits.append(ids)
    hits = np.stack(hits)
    m = hard_env.mj_model
    boxes = set(np.asarray(hard_env.box_geoms).tolist())
    walls = {mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, n) for n in tracks.WALL_NAMES}
    seen = set(np.unique(hits).tolist())
    assert {-1, 0} <= seen and boxes <= seen and seen & walls  # nothing, floor, both boxes, a wall
    assert np.all(depth[hits == -1] == 2.0) and np.mean(hits[7] == -1) > 0.3  # no hit reads max_range


def test_forward_depth_blank_at_reset_with_latency(soft_env, soft_start):
    init, first = soft_start
    np.testing.assert_array_equal(segment(soft_env, init.critic_obs, "forward_depth"), 2.0)
    np.testing.assert_array_equal(np.asarray(init.info["depth_buffer"]), 2.0)
    # a latency of 2: nothing rendered one step after the reset has arrived yet
    np.testing.assert_array_equal(segment(soft_env, first.critic_obs, "forward_depth"), 2.0)


def test_forward_depth_buffer_is_blank_after_an_auto_reset(soft_env, soft_outcome):
    depth = segment(soft_env, soft_outcome.critic_obs, "forward_depth")
    buffer = np.asarray(soft_outcome.info["depth_buffer"])
    np.testing.assert_array_equal(depth[:3], 2.0)  # the reset envs observe the blank frame
    np.testing.assert_array_equal(buffer[:3], 2.0)
    assert buffer[3].min() < 1.0  # the standing robot's buffer holds real frames (the floor ahead)


@pytest.fixture(scope="module")
def latency_record(soft_env, soft_start):
    """Six steps from a reset with the robots moved towards box 1 and turned before each (so every frame differs):
    the depth observed after each step and the MuJoCo image of the pose after each step."""
    state = place(soft_env, soft_start[0], {}, info={"track": batched_track(DET_TRACK, 4)})
    observed, rendered = [], []
    for t in range(6):
        poses = {i: (0.1 + 0.08 * t + 0.05 * i, 0.0, 0.4, quat(yaw=0.1 * (-1) ** t)) for i in range(4)}
        state = step(soft_env, place(soft_env, state, poses))
        assert not bool(state.done.any())
        observed.append(segment(soft_env, state.critic_obs, "forward_depth")[:, 0])
        qpos = np.asarray(state.data.qpos, np.float64)
        images = [mj_depth(*ray_scene(soft_env, DET_TRACK, qpos[i]), soft_env.cfg, qpos[i])[0] for i in range(4)]
        rendered.append(np.stack(images))
    return observed, rendered


def test_forward_depth_frames_differ_while_the_robot_moves(latency_record):
    _, rendered = latency_record
    assert min(np.abs(rendered[t + 1] - rendered[t]).max() for t in range(5)) > 0.05


def test_forward_depth_latency_is_two_steps(latency_record):
    observed, rendered = latency_record
    np.testing.assert_array_equal(observed[0], 2.0)
    np.testing.assert_array_equal(observed[1], 2.0)  # the first frame (step 1) arrives at step 3
    for t in range(2, 6):
        np.testing.assert_allclose(observed[t], rendered[t - 2], atol=1e-4, err_msg=f"step {t + 1}")


def actor_segment(env, obs, name: str) -> np.ndarray:
    """``(num_envs, *shape)`` segment ``name`` of a flat actor observation (divided by its scale)."""
    sl = segment_slices(env.actor_obs.segments)[name]
    scale = float(env.cfg["observations"]["actor"][name].get("scale", 1.0))
    return np.asarray(obs)[:, sl].reshape(-1, *env.actor_obs.segments[name]) / scale


def test_proprioception_reaches_the_actor_two_steps_late_and_the_critic_on_time(soft_env, soft_start):
    assert set(soft_env.DELAYED_QUANTITIES) == {
        "base_lin_vel",
        "base_ang_vel",
        "projected_gravity",
        "dof_pos",
        "dof_vel",
        "base_rpy",
    }
    init = soft_start[0]
    for name in ("base_rpy", "dof_pos"):  # the reset observation: nothing older exists
        np.testing.assert_array_equal(actor_segment(soft_env, init.obs, name), segment(soft_env, init.critic_obs, name))
    state = place(soft_env, init, {}, info={"track": batched_track(DET_TRACK, 4)})
    actor, critic = [], []
    for t in range(5):  # a new heading, height and joint target every step: each step's readings differ
        poses = {i: (0.1 + 0.05 * i, 0.0, 0.36 + 0.01 * t, quat(yaw=0.05 * t)) for i in range(4)}
        actions = np.full((4, soft_env.num_actions), 0.2 * t, np.float32)
        state = step(soft_env, place(soft_env, state, poses), actions)
        assert not bool(state.done.any())
        actor.append({n: actor_segment(soft_env, state.obs, n) for n in ("base_rpy", "dof_pos", "base_ang_vel")})
        critic.append({n: segment(soft_env, state.critic_obs, n) for n in ("base_rpy", "dof_pos", "base_ang_vel")})
    for name in ("base_rpy", "dof_pos", "base_ang_vel"):
        assert np.abs(critic[3][name] - critic[2][name]).max() > 1e-3, name
        for t in range(5):  # steps 1 and 2 see step 1's readings (the episode's oldest), step s >= 3 step s - 2's
            np.testing.assert_allclose(actor[t][name], critic[max(t - 2, 0)][name], atol=1e-6, err_msg=f"{name} {t}")
    # not delayed: the command and the obstacle ahead
    np.testing.assert_array_equal(
        actor_segment(soft_env, state.obs, "commands"), segment(soft_env, state.critic_obs, "commands")
    )


# ---------------------------------------------------------------------------------------------- 5. engaging_block
def test_engaging_block_of_known_positions():
    spec = tracks.TrackSpec(get_task("climb").default_config()["terrain"])  # pass_margin 0.4, length 1.2
    track = {"box_x0": jnp.array([1.0, 4.2]), "box_h": jnp.array([0.3, 0.25]), "gap": jnp.array([2.0, 1.5])}
    none, climb, down = [1, 0, 0], [0, 1, 0], [0, 0, 1]
    cases = {
        0.0: [1.0, *climb, 1.2, 0.3],
        1.3: [-0.3, *climb, 1.2, 0.3],  # on the box, not yet pass_margin beyond its edge
        1.41: [0.79, *down, 2.0, -0.3],
        1.6: [0.6, *down, 2.0, -0.3],
        2.5: [-0.3, *down, 2.0, -0.3],
        3.0: [1.2, *climb, 1.2, 0.25],
        5.0: [0.4, *down, 1.5, -0.25],  # the last gap is the run-out
        5.81: [0.0, *none, 0.0, 0.0],
        9.0: [0.0, *none, 0.0, 0.0],
    }
    for x, expected in cases.items():
        np.testing.assert_allclose(np.asarray(spec.engaging_block(track, jnp.array(x))), expected, atol=1e-5)


def test_cleared_counts_edges_passed_by_the_margin():
    spec = tracks.TrackSpec(get_task("climb").default_config()["terrain"])
    track = {"box_x0": jnp.array([1.0, 4.2]), "box_h": jnp.array([0.3, 0.25]), "gap": jnp.array([2.0, 1.5])}
    counts = [int(spec.cleared(track, jnp.array(x))) for x in (0.0, 1.39, 1.41, 2.59, 2.61, 4.61, 5.81, 50.0)]
    assert counts == [0, 0, 1, 1, 2, 3, 4, 4]


ENGAGING_POSES = {0: (0.0, 0.34), 1: (1.3, 0.64), 2: (1.6, 0.64), 3: (5.9, 0.34)}  # x, z on the DET_TRACK
ENGAGING_POSES |= {4: (3.0, 0.34), 5: (5.0, 0.64), 6: (2.5, 0.34), 7: (0.5, 0.34)}


@pytest.fixture(scope="module")
def engaging_state(hard_env, hard_start):
    poses = {i: (x, 0.0, z, quat()) for i, (x, z) in ENGAGING_POSES.items()}
    state = place(hard_env, hard_start, poses, info={"track": batched_track(DET_TRACK, 8)})
    state = step(hard_env, state)
    assert not bool(state.done.any())
    return state


def test_engaging_block_segment_in_the_observation(hard_env, engaging_state):
    x = np.asarray(engaging_state.data.qpos)[:, 0]
    assert np.all(np.abs(x - [p[0] for p in ENGAGING_POSES.values()]) < 0.02)
    climb, down, none = [0, 1, 0], [0, 0, 1], [1, 0, 0]
    expected = np.array(
        [
            [1.0 - x[0], *climb, 1.2, 0.3],
            [1.0 - x[1], *climb, 1.2, 0.3],
            [2.2 - x[2], *down, 2.0, -0.3],
            [0.0, *none, 0.0, 0.0],
            [4.2 - x[4], *climb, 1.2, 0.3],
            [LAST_EDGE - x[5], *down, 2.0, -0.3],
            [2.2 - x[6], *down, 2.0, -0.3],
            [1.0 - x[7], *climb, 1.2, 0.3],
        ]
    )
    np.testing.assert_allclose(segment(hard_env, engaging_state.critic_obs, "engaging_block"), expected, atol=1e-5)
    actor = segment_slices(hard_env.actor_obs.segments)["engaging_block"]
    np.testing.assert_allclose(np.asarray(engaging_state.obs)[:, actor], expected, atol=1e-5)  # scale 1, no noise
    assert expected[1, 0] < 0 and expected[6, 0] < 0  # on / just past an edge: negative distance


# ---------------------------------------------------------------------------------------------- 6. hard vs soft
def run_into_the_box(env, state, steps: int = 40):
    """Robots 0 and 1 carried at 0.8 m/s towards box 1 (face at x = 1.0, top 0.3) from x = 0.55 with their feet in
    the air below the box top (the base velocity is set before every step: no fall, no rotation); robots 2 and 3
    dropped onto the box top (x = 1.6, z = 0.64). Returns per-step front-foot x (robots 0, 1), base z (2, 3),
    done (0..3), foot contacts (2, 3) and the most negative penetration sum of robots 0 and 1."""
    poses = {i: (0.55, 0.0, 0.45, quat()) for i in (0, 1)} | {i: (1.6, 0.0, 0.64, quat()) for i in (2, 3)}
    state = place(env, state, poses, info={"track": batched_track(DET_TRACK, env.num_envs)})
    front_feet = np.asarray(env.foot_geoms)[:2]  # FL, FR
    carry = {i: [0.8, 0.0, 0.0, 0.0, 0.0, 0.0] for i in (0, 1)}
    feet_x, zs, dones, contacts = [], [], [], []
    penetration = np.zeros(2)
    for _ in range(steps):
        state = step(env, place(env, state, {}, base_vel=carry))
        feet_x.append(np.asarray(state.data.geom_xpos)[:2, front_feet, 0])
        zs.append(np.asarray(state.data.qpos)[2:4, 2])
        dones.append(np.asarray(state.done)[:4])
        contacts.append(segment(env, state.critic_obs, "foot_contacts")[2:4])
        penetration = np.minimum(penetration, np.asarray(state.metrics["episode_sums"]["penetration"])[:2])
    return np.array(feet_x), np.array(zs), np.array(dones), np.array(contacts), penetration


@pytest.fixture(scope="module")
def hard_run(hard_env, hard_start):
    return run_into_the_box(hard_env, hard_start)


@pytest.fixture(scope="module")
def soft_run(soft_env, soft_start):
    return run_into_the_box(soft_env, soft_start[1])


def test_hard_box_face_stops_the_feet(hard_run):
    feet_x, _, dones, _, penetration = hard_run
    assert feet_x.max() < 0.99  # foot spheres (radius 0.02) against the face at x = 1.0
    assert not dones[:21, :2].any()
    assert np.all(feet_x[20] > 0.97)  # they got there and stayed while the base was carried on
    assert np.all(penetration > -0.01)  # only the contact model's millimetres


def test_soft_box_face_lets_the_feet_through_with_a_penetration_penalty(soft_run):
    feet_x, _, dones, _, penetration = soft_run
    assert not dones[:, :2].any()
    assert np.all(feet_x[-1] > 1.3)
    assert np.all(penetration < -0.3)  # feet, calves and thighs inside the box for 20 steps


def test_hard_box_top_carries_a_robot(hard_run):
    _, zs, dones, contacts, _ = hard_run
    assert not dones[:, 2:].any()
    np.testing.assert_allclose(zs[-10:], 0.3 + 0.307, atol=0.02)  # standing height on top of the 0.3 m box
    assert np.all(contacts[-1] == 1.0)  # the feet touch the box top


def test_soft_box_top_lets_a_robot_sink_to_the_floor(soft_run):
    _, zs, dones, _, _ = soft_run
    assert not dones[:, 2:].any()
    assert np.all(zs.min(axis=0) < 0.36) and np.all(zs[-1] < 0.4)  # standing on the floor: 0.31


# ---------------------------------------------------------------------------------------------- 7. cleared and goal
def test_obstacles_cleared_metric_follows_progress(engaging_state):
    m = engaging_state.metrics
    np.testing.assert_array_equal(np.asarray(m["obstacles_cleared"]), [0, 0, 1, 4, 2, 3, 1, 0])
    assert ENGAGING_POSES[3][0] < GOAL_X and not np.any(np.asarray(m["goal_reached"]))
    np.testing.assert_allclose(np.asarray(m["progress"]), np.asarray(engaging_state.data.qpos)[:, 0], atol=1e-3)


# ---------------------------------------------------------------------------------------------- 8. stability
def test_random_actions_stay_finite_at_mixed_levels(hard_env):
    state = hard_env.init(seed_offset=1)
    start_level = np.asarray(state.info["level"])
    np.testing.assert_array_equal(start_level, np.arange(8))
    rng = np.random.default_rng(0)
    finite, resets = jnp.ones((), dtype=bool), jnp.zeros((), jnp.int32)
    for _ in range(200):
        state = step(hard_env, state, rng.uniform(-3.0, 3.0, (8, hard_env.num_actions)))
        finite &= jnp.all(jnp.isfinite(state.obs)) & jnp.all(jnp.isfinite(state.critic_obs))
        finite &= jnp.all(jnp.isfinite(state.reward)) & jnp.all(jnp.isfinite(state.final_critic_obs))
        resets += jnp.sum(state.done)
    assert bool(finite)
    assert np.all(np.isfinite(np.asarray(state.data.qpos))) and np.all(np.isfinite(np.asarray(state.data.qvel)))
    # flailing robots fall: episodes ended (none at a goal), so levels only went down
    level = np.asarray(state.info["level"])
    assert int(resets) > 0 and np.all((level >= 0) & (level <= start_level)) and level.sum() < start_level.sum()
    nominal = 0.05 + 0.4 * level / 9
    assert np.all(np.abs(np.asarray(state.info["track"]["box_h"]) - nominal[:, None]) <= 0.02 + 1e-6)


# ---------------------------------------------------------------------------------------------- 9. config errors
@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("init_level", "hardest", "env.terrain.init_level"),
        ("num_obstacles", 0, "env.terrain.num_obstacles"),
        ("height", [0.4, 0.1], "env.terrain.height"),
    ],
)
def test_bad_terrain_config_raises_config_error(key, value, named):
    cfg = climb_config(2)
    cfg["terrain"][key] = value
    with pytest.raises(ConfigError) as err:
        get_task("climb").env_class(cfg, 2, seed=0)
    message = str(err.value)
    assert named in message
    assert repr(value) in message or str(value) in message
    assert "\n" not in message

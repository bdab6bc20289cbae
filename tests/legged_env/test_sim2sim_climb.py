"""Sim-to-sim on climb: the numpy track and observations of legged_rl/sim2sim*.py equal the env's (every actor
segment, same state), the training-physics model is the env's, the referee model is real boxes with every geom
colliding, and a climb run reports play's metric keys.

One env: the session fixture ``hard_env`` (tests/legged_env/conftest.py; 8 envs, physical boxes, every env at its own
level, observation noise off, so its actor observation is clean).
"""

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
import torch

from legged_rl import sim2sim
from legged_rl.deploy import policy_metadata
from legged_rl.sim2sim import MujocoDeployment
from legged_rl.sim2sim_climb import run_climb
from legged_rl.sim2sim_track import WALL_NAMES, Track
from st_rl.utils.io import atomic_write_json
from tests.legged_env.envs import segment_slices

pytestmark = pytest.mark.timeout(600)

DEVICE = jax.devices()[0]
CLIMB_ACTOR = ("base_rpy", "wall_distance", "engaging_block", "height_scan")


def commit(tree):
    """On the device and strongly typed, as the env's step returns its state (one compile of the step)."""
    return jax.device_put(jax.tree.map(lambda x: jnp.asarray(x, x.dtype), tree), DEVICE)


def step(env, state, actions):
    return env.step_batched(commit(state), commit(jnp.asarray(actions, jnp.float32)))


class _Linear(torch.nn.Module):
    def __init__(self, num_obs: int, num_actions: int):
        super().__init__()
        self.layer = torch.nn.Linear(num_obs, num_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.layer(obs))


@pytest.fixture(scope="module")
def export_dir(hard_env, tmp_path_factory):
    path = tmp_path_factory.mktemp("climb_export")
    torch.manual_seed(0)
    torch.jit.script(_Linear(hard_env.actor_obs.size, hard_env.num_actions)).save(str(path / "policy.pt"))
    atomic_write_json(str(path / "policy.json"), policy_metadata(hard_env, "climb"))
    return str(path)


def _track(state, i: int) -> dict:
    return {k: np.asarray(v[i], np.float64) for k, v in state.info["track"].items()}


@pytest.fixture(scope="module")
def climb_state(hard_env):
    """hard_env after spawning, every robot put somewhere along its own track (before box 1, at its climb edge, on
    it, just past its jump-down edge, in the gap, on box 2, just past the last edge, past every edge), off the
    centre line and turned, then 5 random policy steps."""
    state = step(hard_env, hard_env.init(), np.zeros((8, 12)))
    qpos, length = np.array(state.data.qpos), hard_env.track.length
    for i in range(hard_env.num_envs):
        t = _track(state, i)
        x0, h = t["box_x0"], t["box_h"]
        x = [0.3, x0[0] - 0.4, x0[0] + 0.6, x0[0] + length + 0.25, x0[0] + length + 1.0, x0[1] + 0.6,
             x0[1] + length + 0.25, x0[1] + length + 0.5][i]  # fmt: skip
        on_box = [0, 0, h[0], 0, 0, h[1], 0, 0][i]
        yaw = 0.1 * (i - 3.5)
        qpos[i, :3] = x, 0.3 * np.sin(1.7 * i + 0.5), on_box + 0.34
        qpos[i, 3:7] = np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)
    state = state.replace(data=state.data.replace(qpos=jnp.asarray(qpos, jnp.float32)))
    key = jax.random.PRNGKey(5)
    for _ in range(5):
        key, sub = jax.random.split(key)
        state = step(hard_env, state, 0.3 * np.asarray(jax.random.normal(sub, (8, 12))))
    return state


def _load(dep: MujocoDeployment, state, e: int) -> None:
    dep.data.qpos[:] = np.asarray(state.data.qpos[e], np.float64)
    dep.data.qvel[:] = np.asarray(state.data.qvel[e], np.float64)
    dep.set_track(_track(state, e))
    dep.commands = np.asarray(state.info["commands"][e], np.float64)
    dep.last_actions = np.asarray(state.info["last_actions"][e], np.float64)


def _mismatches(hard_env, dep, state, envs) -> list[str]:
    """Segments whose sim2sim value differs from the env's clean actor observation by more than 1e-5."""
    bad = []
    for e in envs:
        _load(dep, state, e)
        obs, expected = dep.observation(), np.asarray(state.obs[e], np.float64)
        for name, sl in segment_slices(hard_env.actor_obs.segments).items():
            err = float(np.abs(obs[sl] - expected[sl]).max())
            if err > 1e-5:
                bad.append(f"env {e} {name}: {err:.2g}")
    return bad


def _live(state) -> np.ndarray:
    return np.flatnonzero(~np.asarray(state.done))


def test_every_climb_segment_equals_the_envs(hard_env, export_dir, climb_state):
    assert set(CLIMB_ACTOR) | set(sim2sim.WALK_SEGMENTS) == set(hard_env.actor_obs.segments)
    assert not hard_env.noise_level  # the actor observation is the clean one
    envs = _live(climb_state)
    assert len(envs) >= 6
    dep = MujocoDeployment(export_dir)
    assert _mismatches(hard_env, dep, climb_state, envs) == []
    # the states cover what the segments distinguish: every obstacle type, both sides, turned, boxes in the scan
    sl = segment_slices(hard_env.actor_obs.segments)
    obs = np.asarray(climb_state.obs)[envs]
    kinds = obs[:, sl["engaging_block"]][:, 1:4].argmax(axis=1)
    assert set(kinds.tolist()) == {0, 1, 2}
    y = np.asarray(climb_state.data.qpos)[envs, 1]
    assert y.min() < -0.1 and y.max() > 0.1
    assert np.ptp(obs[:, sl["base_rpy"]][:, 2]) > 0.3
    assert np.ptp(obs[:, sl["height_scan"]]) > 0.2


def test_the_equality_check_catches_a_flipped_sign(hard_env, export_dir, climb_state, monkeypatch):
    """Break-check: a sim2sim with wall_distance's sides swapped (or an engaging_block distance of the wrong sign,
    or a height scan of the wrong yaw) fails the comparison above."""
    dep = MujocoDeployment(export_dir)
    quantity = MujocoDeployment.quantity

    def broken(name):
        def q(self, n, rot=None):
            value = quantity(self, n, rot)
            if n == name == "wall_distance":
                return value[::-1]
            if n == name == "engaging_block":
                return value * np.array([-1.0, 1, 1, 1, 1, 1])
            if n == name == "height_scan":
                return quantity(self, n, rot.T)
            return value

        return q

    for name in ("wall_distance", "engaging_block", "height_scan"):
        monkeypatch.setattr(MujocoDeployment, "quantity", broken(name))
        bad = _mismatches(hard_env, dep, climb_state, _live(climb_state))
        assert bad and all(name in b for b in bad), name


def test_track_formulas_equal_trackspec(hard_env, climb_state):
    spec, track = hard_env.track, Track(hard_env.cfg["terrain"])
    assert (track.num_boxes, track.num_levels) == (spec.num_boxes, spec.num_levels)
    for level in range(track.num_levels):
        assert track.level_height(level) == pytest.approx(float(spec.level_height(level)), abs=1e-6)
    np.testing.assert_allclose(track.walls, np.asarray(spec.walls), atol=1e-6)
    for e in range(hard_env.num_envs):
        t = _track(climb_state, e)
        jt = {k: jnp.asarray(v, jnp.float32) for k, v in t.items()}
        np.testing.assert_allclose(track.boxes(t), np.asarray(spec.boxes(jt)), atol=1e-6)
        assert track.goal_x(t) == pytest.approx(float(spec.goal_x(jt)), abs=1e-5)
        for x in np.linspace(-0.5, track.goal_x(t) + 0.5, 9):
            np.testing.assert_allclose(track.engaging_block(t, x), np.asarray(spec.engaging_block(jt, x)), atol=1e-5)
            assert track.cleared(t, x) == int(spec.cleared(jt, jnp.float32(x)))
            np.testing.assert_allclose(track.collider_pos(t, x), np.asarray(spec.collider_pos(jt, x)), atol=1e-6)


def test_sampled_tracks_follow_the_sampling_rules(hard_env):
    track, cfg = Track(hard_env.cfg["terrain"]), hard_env.cfg["terrain"]
    rng = np.random.default_rng(0)
    for level in range(track.num_levels):
        t = track.sample(rng, level)
        assert cfg["run_up"][0] <= t["box_x0"][0] <= cfg["run_up"][1]
        assert np.all((t["gap"] >= cfg["gap"][0]) & (t["gap"] <= cfg["gap"][1]))
        np.testing.assert_allclose(np.diff(t["box_x0"]), track.length + t["gap"][:-1])
        assert np.all(np.abs(t["box_h"] - track.level_height(level)) <= cfg["height_noise"] + 1e-12)


def _geoms(model) -> dict:
    out = {}
    for g in range(model.ngeom):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g)
        out[name] = (
            int(model.geom_type[g]), tuple(np.round(model.geom_size[g], 6)), int(model.geom_contype[g]),
            int(model.geom_conaffinity[g]), int(model.geom_condim[g]), tuple(np.round(model.geom_friction[g], 6)),
            int(model.geom_group[g]), int(model.geom_bodyid[g]),
        )  # fmt: skip
    return out


def test_training_physics_is_the_envs_model(hard_env, export_dir):
    model, env = MujocoDeployment(export_dir, physics="training").model, hard_env.mj_model
    assert _geoms(model) == _geoms(env)
    moved = {*np.asarray(hard_env.box_geoms).tolist(), hard_env.collider_geom}
    fixed = [g for g in range(env.ngeom) if g not in moved]
    np.testing.assert_allclose(model.geom_pos[fixed], env.geom_pos[fixed], atol=1e-6)  # env: float32 walls
    np.testing.assert_allclose(model.geom_quat[fixed], env.geom_quat[fixed], atol=1e-9)
    for key in ("timestep", "iterations", "ls_iterations", "solver", "cone"):
        assert getattr(model.opt, key) == getattr(env.opt, key), key
    midphase = int(mujoco.mjtDisableBit.mjDSBL_MIDPHASE)  # off in sim2sim: see the next test
    assert model.opt.disableflags == env.opt.disableflags | midphase
    for name in ("dof_damping", "dof_frictionloss", "dof_armature", "body_mass"):
        np.testing.assert_array_equal(getattr(model, name), getattr(env, name))


@pytest.mark.parametrize("physics", ["referee", "training"])
def test_legs_inside_a_placed_box_touch_it(export_dir, physics):
    # The boxes are placed per episode (and the training collider per step) after compiling; MuJoCo's midphase
    # (bounding-volume trees of the world body from compile time) then missed the feet and calves inside a box
    # and saw only the thighs at its top.
    dep = MujocoDeployment(export_dir, physics=physics)
    dep.reset(track={"box_x0": np.array([1.0, 4.2]), "box_h": np.array([0.3, 0.3]), "gap": np.array([2.0, 2.0])})
    dep.data.qpos[0], dep.data.qpos[2] = 1.5, 0.45  # over box 0, feet and calves below its top
    dep._place_collider()
    mujoco.mj_forward(dep.model, dep.data)
    box = dep.collider_geom if physics == "training" else dep.box_geoms[0]
    con = dep.data.contact[: dep.data.ncon]
    touching = {int(g) for c in con if box in (c.geom1, c.geom2) for g in (c.geom1, c.geom2) if g != box}
    names = {mujoco.mj_id2name(dep.model, mujoco.mjtObj.mjOBJ_GEOM, g) for g in touching}
    assert {f"{leg}_{part}" for leg in ("FL", "FR", "RL", "RR") for part in ("calf", "foot")} <= names


def test_referee_track_is_real_boxes_with_every_geom_colliding(hard_env, export_dir, climb_state):
    dep = MujocoDeployment(export_dir)
    m, spec = dep.model, dep.track_spec
    assert (m.opt.iterations, m.opt.ls_iterations) == (100, 50)
    assert not m.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_EULERDAMP
    assert set(m.geom_contype) == set(m.geom_conaffinity) == {1} and set(m.geom_condim) == {3}
    assert set(m.body_contype) == set(m.body_conaffinity) == {1}  # the compiler's per-body bits follow
    np.testing.assert_array_equal(m.geom_friction, np.broadcast_to([1.0, 0.02, 0.01], m.geom_friction.shape))
    terrain = np.flatnonzero(dep.is_terrain)
    names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g) for g in terrain]
    assert names == ["floor", *(f"track_box{k}" for k in range(spec.num_boxes)), *WALL_NAMES]
    # geoms at the track's boxes: obstacles then walls, [xmin, ymin, zmin, xmax, ymax, zmax]
    t = _track(climb_state, 5)
    dep.reset(track=t)
    lo = dep.data.geom_xpos[terrain[1:]] - m.geom_size[terrain[1:]]
    hi = dep.data.geom_xpos[terrain[1:]] + m.geom_size[terrain[1:]]
    np.testing.assert_allclose(np.concatenate([lo, hi], axis=1), spec.boxes(t), atol=1e-9)
    assert spec.boxes(t)[-1, 5] == hard_env.cfg["terrain"]["wall_height"]
    # a robot dropped onto box 1 stands on it (it collides) instead of sinking to the floor
    dep.data.qpos[:3] = t["box_x0"][0] + 0.6, 0.0, t["box_h"][0] + 0.34
    mujoco.mj_forward(dep.model, dep.data)
    for _ in range(100):  # 0.5 s, no torques: it folds up on the box
        mujoco.mj_step(dep.model, dep.data)
    assert dep.data.qpos[2] > t["box_h"][0] + 0.02
    assert terrain[1] in dep.data.contact.geom[: dep.data.ncon]


def test_a_climb_run_reports_plays_metrics(export_dir, hard_env):
    env_cfg = {**hard_env.cfg, "episode_length_s": 0.4}
    dep = MujocoDeployment(export_dir, env_cfg=env_cfg)
    metrics = run_climb(dep, 3, seed=1)
    assert metrics["num_episodes"] == 3 and metrics["obstacles_per_track"] == 4
    assert list(metrics["by_obstacle_height"]) == ["0.050", "0.094", "0.139"]
    for m in (metrics, *metrics["by_obstacle_height"].values()):
        assert 0.0 <= m.get("success_rate", 0.0) <= 1.0 and 0.0 <= m["fall_rate"] <= 1.0
        assert 0.0 <= m["non_foot_contact_steps_fraction"] <= 1.0
        assert 0.0 <= m["max_body_penetration_m"] <= m["max_penetration_m"] < 0.05
    assert metrics["mean_episode_length_s"] <= 0.4 + 1e-9
    assert run_climb(dep, 3, seed=1) == metrics  # seeded


def test_perturbed_adds_the_actors_noise_and_the_pushes(export_dir, hard_env):
    cfg = {
        **hard_env.cfg,
        "noise": {"enabled": True, "level": 1.0},
        "domain_rand": {**hard_env.cfg["domain_rand"], "push_vel_xy": 0.5, "push_interval_s": 0.1},
    }
    nominal = MujocoDeployment(export_dir, env_cfg=cfg)
    perturbed = MujocoDeployment(export_dir, env_cfg=cfg, perturbed=True, seed=3)
    for dep in (nominal, perturbed):
        dep.reset(track={"box_x0": np.array([1.0, 4.2]), "box_h": np.array([0.3, 0.3]), "gap": np.array([2.0, 2.0])})
    diff = perturbed.observation() - nominal.observation()
    # per element within noise x scale, e.g. dof_vel: 1.5 x 0.05; segments without noise unchanged
    bound = np.concatenate(
        [
            np.asarray(s["scale"]) * float((cfg["observations"]["actor"][s["name"]] or {}).get("noise", 0.0))
            for s in nominal.meta["obs_segments"]
        ]
    )
    assert np.all(np.abs(diff) <= bound + 1e-12) and np.abs(diff).max() > 0.5 * bound.max()
    assert np.all(diff[bound == 0] == 0)
    # the push: every 0.1 s = 5 policy steps, a horizontal kick; the same noise draws without pushes until then
    no_push = {**cfg, "domain_rand": {**cfg["domain_rand"], "push_vel_xy": 0.0}}
    unpushed = MujocoDeployment(export_dir, env_cfg=no_push, perturbed=True, seed=3)
    unpushed.reset(track=perturbed.track)
    unpushed.observation()  # the draw perturbed made above
    for _ in range(4):
        perturbed.step(), unpushed.step()
    np.testing.assert_array_equal(perturbed.data.qvel, unpushed.data.qvel)
    perturbed.step(), unpushed.step()
    kick = perturbed.data.qvel[:2] - unpushed.data.qvel[:2]
    assert 0.01 < np.abs(kick).max() <= 0.5
    np.testing.assert_array_equal(perturbed.data.qvel[2:], unpushed.data.qvel[2:])

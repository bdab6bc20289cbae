"""Go1 kinematics (against MuJoCo's own) and the shipped parametric reference gaits (trot.npz, pace.npz)."""

import importlib
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest

from legged_env.robots.go1 import constants as go1
from legged_env.robots.go1.amp import AMP_OBS_SEGMENTS
from legged_env.robots.go1.kinematics import Go1Kinematics, load_kinematics
from st_rl.datasets import MotionLoader, load_motion
from st_rl.utils.obs_segments import get_obs_slice

REPO = Path(__file__).resolve().parents[2]
MOTIONS = REPO / "legged_env" / "robots" / "go1" / "motions"
FPS, SPEED, FREQUENCY, SWING_HEIGHT = 50.0, 0.6, 2.0, 0.08  # the shipped clips' parameters (script defaults)
PERIOD_FRAMES = int(FPS / FREQUENCY)


@pytest.fixture(scope="module")
def script():
    """The command scripts/make_reference_motion.py runs."""
    return importlib.import_module("legged_rl.commands.make_reference_motion")


@pytest.fixture(scope="module")
def model():
    return mujoco.MjModel.from_xml_path(str(go1.XML_PATH))


def mujoco_feet(m: mujoco.MjModel, q: np.ndarray, base_height: float = 0.0) -> np.ndarray:
    """Foot geom centres ``(B, 4, 3)`` in the world for joint angles ``(B, 12)``, trunk level at (0, 0, base_height)."""
    d = mujoco.MjData(m)
    adr = [m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n)] for n in go1.JOINT_NAMES]
    geoms = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, n) for n in go1.FOOT_GEOMS]
    out = []
    for qi in q:
        d.qpos[:] = 0.0
        d.qpos[2], d.qpos[3] = base_height, 1.0  # free joint: position, identity quaternion
        d.qpos[adr] = qi
        mujoco.mj_kinematics(m, d)
        out.append(d.geom_xpos[geoms].copy())
    return np.array(out)


def random_q(m: mujoco.MjModel, n: int, seed: int) -> np.ndarray:
    ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name) for name in go1.JOINT_NAMES]
    lo, hi = m.jnt_range[ids].T
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, 12))


def segment(frames: np.ndarray, name: str) -> np.ndarray:
    return frames[:, get_obs_slice(AMP_OBS_SEGMENTS, name)[0]]


# ---------------------------------------------------------------------------------------------- kinematics
def test_fk_matches_mujoco(model):
    kin = load_kinematics()
    q = random_q(model, 300, seed=0)
    np.testing.assert_allclose(kin.fk(q), mujoco_feet(model, q), atol=1e-6, rtol=0)
    for leg in range(4):
        np.testing.assert_allclose(kin.leg_fk(leg, q[:, 3 * leg : 3 * leg + 3]), kin.fk(q)[:, leg], atol=1e-12)


def test_geometry_and_ranges_come_from_the_xml(model, tmp_path):
    kin = load_kinematics()
    ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name) for name in go1.JOINT_NAMES]
    np.testing.assert_array_equal(kin.joint_range, model.jnt_range[ids])
    assert kin.foot_radius == pytest.approx(go1.FOOT_RADIUS)
    # A longer FL thigh in the XML changes the kinematics, which still agree with MuJoCo.
    text = go1.XML_PATH.read_text().replace(
        '<body name="FL_calf" pos="0 0 -0.213">', '<body name="FL_calf" pos="0 0 -0.25">'
    )
    longer = tmp_path / "go1_long.xml"
    longer.write_text(text)
    kin_long, model_long = Go1Kinematics.from_xml(longer), mujoco.MjModel.from_xml_path(str(longer))
    assert kin_long.thigh_length.tolist() == [0.25, 0.213, 0.213, 0.213]
    q = random_q(model_long, 50, seed=1)
    np.testing.assert_allclose(kin_long.fk(q), mujoco_feet(model_long, q), atol=1e-6, rtol=0)
    # A structure the closed form does not cover is refused with the element named.
    tilted = tmp_path / "go1_tilted.xml"
    tilted.write_text(
        go1.XML_PATH.read_text().replace(
            '<body name="RR_calf" pos="0 0 -0.213">', '<body name="RR_calf" pos="0.01 0 -0.213">'
        )
    )
    with pytest.raises(
        ValueError, match=r"go1_tilted\.xml: body RR_calf pos is \[0\.01, 0\.0, -0\.213\], expected \(0, 0, -l\)"
    ):
        Go1Kinematics.from_xml(tilted)


def test_ik_inverts_fk(model):
    kin = load_kinematics()
    q = random_q(model, 2000, seed=2)
    feet = kin.fk(q)
    q_ik = kin.ik(feet)
    np.testing.assert_allclose(kin.fk(q_ik), feet, atol=1e-9)  # every target is reached
    # The IK returns the branch with the foot below the thigh joint in the abducted leg plane (the
    # stance branch): there it recovers the angles exactly. The thigh range reaches 4.5 rad, so random
    # angles also fold legs up over the hip, where the other branch is returned (same foot position).
    below = np.empty((len(q), 4), dtype=bool)
    for leg in range(4):
        rel = feet[:, leg] - kin.hip_pos[leg]
        hip = q[:, 3 * leg]
        below[:, leg] = -np.sin(hip) * rel[:, 1] + np.cos(hip) * rel[:, 2] < 0
    assert below.mean() > 0.5
    err = np.abs(q_ik - q).reshape(-1, 4, 3).max(axis=-1)
    assert err[below].max() < 1e-9
    assert kin.within_limits(q_ik[below.all(axis=1)]).all()
    # One leg, a stance-like target.
    target = kin.fk(np.array(go1.DEFAULT_JOINT_POS))[2]
    np.testing.assert_allclose(kin.leg_ik(2, target), go1.DEFAULT_JOINT_POS[6:9], atol=1e-12)
    with pytest.raises(ValueError, match=r"out of reach for leg FR: .* from the thigh joint"):
        kin.leg_ik(1, kin.hip_pos[1] + np.array([0.0, -0.08, -0.5]))


def test_standing_height_rests_the_default_pose_on_the_ground(model):
    kin = load_kinematics()
    height = kin.standing_height()
    assert 0.32 < height < 0.34
    feet = mujoco_feet(model, np.array([go1.DEFAULT_JOINT_POS]), base_height=height)[0]
    np.testing.assert_allclose(feet[:, 2], kin.foot_radius, atol=1e-9)  # spheres touch z = 0


# ---------------------------------------------------------------------------------------------- reference clips
@pytest.mark.parametrize("gait", ["trot", "pace"])
def test_shipped_clip_is_the_scripts_output_and_loads(script, gait):
    clip = load_motion(str(MOTIONS / f"{gait}.npz"))
    generated = script.generate_gait(gait)
    np.testing.assert_allclose(clip.frames, generated["frames"], rtol=0, atol=1e-5)  # last-bit differences only
    assert clip.fps == FPS and clip.joint_names == go1.JOINT_NAMES and clip.segments == AMP_OBS_SEGMENTS
    assert clip.duration == pytest.approx(4.0)
    assert f"--gait {gait}" in clip.description
    loader = MotionLoader(str(MOTIONS / f"{gait}.npz"), AMP_OBS_SEGMENTS, go1.JOINT_NAMES, dt=1.0 / FPS)
    s, s_next = loader.sample_pairs(8)
    assert s.shape == s_next.shape == (8, 43)


@pytest.mark.parametrize("gait", ["trot", "pace"])
def test_reference_gait_physics(model, gait):
    kin = load_kinematics()
    frames = load_motion(str(MOTIONS / f"{gait}.npz")).frames.astype(np.float64)
    n = len(frames)
    q = segment(frames, "dof_pos") + np.array(go1.DEFAULT_JOINT_POS)
    feet = segment(frames, "foot_pos").reshape(n, 4, 3)
    height = segment(frames, "base_height")[:, 0]

    np.testing.assert_allclose(height, kin.standing_height(), atol=1e-6)
    np.testing.assert_allclose(segment(frames, "base_lin_vel"), np.tile([SPEED, 0.0, 0.0], (n, 1)), atol=1e-6)
    np.testing.assert_allclose(segment(frames, "base_ang_vel"), 0.0, atol=0)
    # Joint angles within go1.xml's ranges (with margin), feet where MuJoCo puts them for those angles.
    ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name) for name in go1.JOINT_NAMES]
    lo, hi = model.jnt_range[ids].T
    assert (q > lo + 0.2).all() and (q < hi - 0.2).all()
    np.testing.assert_allclose(feet, mujoco_feet(model, q), atol=2e-6)

    # On the ground or above it: the lowest foot height is the ground contact, held for half the period.
    ground = -(height[:, None] - kin.foot_radius)
    z = feet[..., 2]
    assert (z >= ground - 1e-6).all()
    stance = z < ground + 1e-6
    assert abs(stance.mean() - 0.5) < 0.05
    assert (z - ground).max() == pytest.approx(SWING_HEIGHT, abs=2e-3)
    # Stance feet slide backwards at -speed in the base frame (the ground is still in the world).
    vel = (feet[2:] - feet[:-2]) * FPS / 2
    held = stance[2:] & stance[1:-1] & stance[:-2]
    assert held.sum() > 100
    np.testing.assert_allclose(vel[..., 0][held], -SPEED, atol=1e-3)
    np.testing.assert_allclose(vel[..., 1:][held], 0.0, atol=1e-3)

    # Periodic with the gait period, and the pairs move in phase, half a period after the other pair.
    np.testing.assert_allclose(frames[PERIOD_FRAMES:], frames[:-PERIOD_FRAMES], atol=1e-5)
    fl, fr, rl, rr = range(4)
    pairs = [(fl, rr), (fr, rl)] if gait == "trot" else [(fl, rl), (fr, rr)]
    for a, b in pairs:
        np.testing.assert_allclose(z[:, a], z[:, b], atol=1e-6)
        np.testing.assert_allclose(feet[:, a, 0] - feet[0, a, 0], feet[:, b, 0] - feet[0, b, 0], atol=1e-6)
    assert not np.allclose(z[:, pairs[0][0]], z[:, pairs[1][0]], atol=1e-3)
    assert (stance[:, pairs[0][0]] != stance[:, pairs[1][0]]).mean() > 0.9


def test_joint_velocities_are_the_time_derivative(script):
    fps = 20000.0  # fine sampling: differences approach the derivative
    g = script.generate_gait("trot", seconds=0.5, fps=fps)
    q, dof_vel = g["q"], g["dof_vel"]
    np.testing.assert_allclose((q[2:] - q[:-2]) * fps / 2, dof_vel[1:-1], atol=5e-3)
    # Continuous: no jump at touch-down or lift-off (the swing's end slopes match the stance speed).
    assert np.abs(np.diff(dof_vel, axis=0)).max() < 0.05
    assert np.abs(dof_vel).max() > 3.0  # the legs really move
    # Half a period apart, the two diagonal pairs swap roles exactly.
    t = np.linspace(0.0, 0.5, 7)
    first, _ = script.foot_targets(t, "trot", SPEED, FREQUENCY, 0.5, SWING_HEIGHT, 0.33, load_kinematics())
    later, _ = script.foot_targets(t + 0.25, "trot", SPEED, FREQUENCY, 0.5, SWING_HEIGHT, 0.33, load_kinematics())
    np.testing.assert_allclose(later[:, 0, 2], first[:, 1, 2], atol=1e-12)


def test_script_cli(tmp_path):
    out = tmp_path / "slow_pace.npz"
    cmd = [sys.executable, str(REPO / "scripts" / "make_reference_motion.py"), "--gait", "pace", "--speed", "0.3"]
    proc = subprocess.run([*cmd, "--seconds", "1", "--output", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    clip = load_motion(str(out))
    assert clip.num_frames == 51
    np.testing.assert_allclose(segment(clip.frames, "base_lin_vel")[:, 0], 0.3)
    bad = subprocess.run(
        [*cmd, "--swing_height", "0.3", "--output", str(tmp_path / "x.npz")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "outside its range" in bad.stderr and not (tmp_path / "x.npz").exists()

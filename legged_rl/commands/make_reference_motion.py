"""Write a parametric Go1 gait as an AMP reference clip: python scripts/make_reference_motion.py --gait trot.

The base moves forward at a constant ``--speed`` and height (default: the height at which the default
standing pose's feet rest on the ground, from the kinematics of go1.xml), level and without rotation.
Each foot follows a periodic path around its nominal position (the default pose's foot, under the hip):

- stance (``duty`` of the period): on the ground (sphere touching it: foot centre at
  ``z = -(base_height - foot_radius)`` in the base frame), moving backwards at ``-speed``;
- swing: forward again along a cubic whose end slopes match the stance speed (so foot and joint
  velocities are continuous), lifted by ``swing_height * sin^2(pi s)`` (``s`` the swing fraction).

Trot moves the diagonal pairs (FL+RR, FR+RL) half a period apart, pace the lateral pairs (FL+RL, FR+RR).
Joint angles come from the analytic inverse kinematics, joint velocities from central differences of the
(periodic) joint trajectory, foot positions from the forward kinematics of those angles. The clip is written
in the format of st_rl.datasets.motion_loader with the AMP layout of legged_env/robots/go1/amp.py.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from legged_env.robots.go1 import constants as go1
from legged_env.robots.go1.amp import AMP_OBS_SEGMENTS
from legged_env.robots.go1.kinematics import Go1Kinematics, load_kinematics
from st_rl.datasets.motion_loader import save_motion

MOTIONS_DIR = Path(go1.XML_PATH).with_name("motions")

# Phase offset (fraction of a period) of each leg, order FL, FR, RL, RR.
GAIT_PHASES = {
    "trot": (0.0, 0.5, 0.5, 0.0),  # diagonal pairs FL+RR, FR+RL
    "pace": (0.0, 0.5, 0.0, 0.5),  # lateral pairs FL+RL, FR+RR
}
VELOCITY_STEP = 1e-4  # s, central-difference step of the joint velocities


def _check_args(gait: str, speed: float, frequency: float, duty: float, swing_height: float, fps: float) -> None:
    if gait not in GAIT_PHASES:
        raise ValueError(f"unknown gait '{gait}' (valid: {', '.join(GAIT_PHASES)})")
    if not 0.0 < duty < 1.0:
        raise ValueError(f"duty factor must be in (0, 1), got {duty}")
    if frequency <= 0 or fps <= 0:
        raise ValueError(f"gait frequency and fps must be positive, got {frequency} Hz and {fps}")
    if swing_height < 0 or speed < 0:
        raise ValueError(f"speed and swing height must be >= 0, got {speed} m/s and {swing_height} m")


def foot_targets(
    t: np.ndarray,
    gait: str,
    speed: float,
    frequency: float,
    duty: float,
    swing_height: float,
    base_height: float,
    kin: Go1Kinematics,
) -> tuple[np.ndarray, np.ndarray]:
    """Foot centres in the base frame at times ``t`` ``(T,)``.

    Returns:
        ``(foot_pos (T, 4, 3), stance (T, 4) bool)``.
    """
    nominal = kin.fk(np.array(go1.DEFAULT_JOINT_POS))  # (4, 3): default-pose feet, nearly under the hips
    ground_z = -(base_height - kin.foot_radius)
    phase = np.mod(np.asarray(t, dtype=np.float64)[:, None] * frequency + np.array(GAIT_PHASES[gait]), 1.0)
    stride = speed * duty / frequency  # distance the base travels while a foot is on the ground
    stance = phase < duty
    # Stance: x from +stride/2 to -stride/2 at -speed. Swing: cubic Hermite from -stride/2 to +stride/2 whose
    # end slopes equal the stance slope (m in units of stride per swing fraction).
    s = np.where(stance, 0.0, (phase - duty) / (1.0 - duty))
    m = -(1.0 - duty) / duty
    swing_x = (2 * m - 2) * s**3 + (3 - 3 * m) * s**2 + m * s
    x = np.where(stance, 0.5 - phase / duty, swing_x - 0.5) * stride
    z = np.where(stance, 0.0, swing_height * np.sin(np.pi * s) ** 2)
    pos = np.broadcast_to(nominal, phase.shape + (3,)).copy()
    pos[..., 0] += x
    pos[..., 2] = ground_z + z
    return pos, stance


def generate_gait(
    gait: str = "trot",
    speed: float = 0.6,
    frequency: float = 2.0,
    duty: float = 0.5,
    swing_height: float = 0.08,
    base_height: float | None = None,
    seconds: float = 4.0,
    fps: float = 50.0,
    kin: Go1Kinematics | None = None,
) -> dict[str, np.ndarray | float]:
    """A parametric gait sampled at ``fps`` for ``seconds`` (``round(seconds * fps) + 1`` frames).

    Returns:
        dict with ``frames`` ``(F, 43)`` float32 AMP observations (layout ``AMP_OBS_SEGMENTS``), ``time``
        ``(F,)``, ``q`` ``(F, 12)`` joint angles, ``dof_vel`` ``(F, 12)``, ``foot_pos`` ``(F, 4, 3)``,
        ``stance`` ``(F, 4)`` bool and ``base_height`` (float).

    Raises:
        ValueError: bad parameters, an unreachable foot target, or joint angles outside go1.xml's ranges.
    """
    _check_args(gait, speed, frequency, duty, swing_height, fps)
    kin = kin or load_kinematics()
    base_height = kin.standing_height() if base_height is None else float(base_height)
    num_frames = int(round(seconds * fps)) + 1
    t = np.arange(num_frames) / fps

    def joints(times: np.ndarray) -> np.ndarray:
        pos, _ = foot_targets(times, gait, speed, frequency, duty, swing_height, base_height, kin)
        return kin.ik(pos)

    q = joints(t)
    inside = kin.within_limits(q)
    if not inside.all():
        i = int(np.argmin(inside))
        j = int(np.argmax((q[i] < kin.joint_range[:, 0]) | (q[i] > kin.joint_range[:, 1])))
        raise ValueError(
            f"{gait}: joint {go1.JOINT_NAMES[j]} reaches {q[i, j]:.3f} rad at t={t[i]:.2f} s, outside its range "
            f"{kin.joint_range[j].tolist()} (lower the speed or swing height, or change the base height)"
        )
    dof_vel = (joints(t + VELOCITY_STEP) - joints(t - VELOCITY_STEP)) / (2 * VELOCITY_STEP)
    foot_pos = kin.fk(q)
    _, stance = foot_targets(t, gait, speed, frequency, duty, swing_height, base_height, kin)
    parts = {
        "dof_pos": q - np.array(go1.DEFAULT_JOINT_POS),
        "dof_vel": dof_vel,
        "base_height": np.full((num_frames, 1), base_height),
        "base_lin_vel": np.tile([speed, 0.0, 0.0], (num_frames, 1)),
        "base_ang_vel": np.zeros((num_frames, 3)),
        "foot_pos": foot_pos.reshape(num_frames, 12),
    }
    if list(parts) != list(AMP_OBS_SEGMENTS):
        raise AssertionError(f"segments {list(parts)} do not follow AMP_OBS_SEGMENTS {list(AMP_OBS_SEGMENTS)}")
    frames = np.concatenate([parts[name].reshape(num_frames, -1) for name in AMP_OBS_SEGMENTS], axis=1)
    return {
        "frames": frames.astype(np.float32),
        "time": t,
        "q": q,
        "dof_vel": dof_vel,
        "foot_pos": foot_pos,
        "stance": stance,
        "base_height": base_height,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gait", default="trot", choices=sorted(GAIT_PHASES))
    p.add_argument("--speed", type=float, default=0.6, help="forward base speed (m/s, default 0.6)")
    p.add_argument("--frequency", type=float, default=2.0, help="gait frequency (Hz, default 2)")
    p.add_argument("--duty", type=float, default=0.5, help="fraction of the period a foot is on the ground")
    p.add_argument("--swing_height", type=float, default=0.08, help="foot lift in swing (m, default 0.08)")
    p.add_argument("--base_height", type=float, default=None, help="default: standing height of the default pose")
    p.add_argument("--seconds", type=float, default=4.0, help="clip duration (s, default 4)")
    p.add_argument("--fps", type=float, default=50.0, help="frame rate (default 50, the control rate)")
    p.add_argument("--weight", type=float, default=1.0, help="sampling weight stored in the clip")
    p.add_argument("--output", default=None, help="default: legged_env/robots/go1/motions/<gait>.npz")
    args = p.parse_args(argv)
    output = args.output or str(MOTIONS_DIR / f"{args.gait}.npz")
    try:
        g = generate_gait(
            args.gait,
            args.speed,
            args.frequency,
            args.duty,
            args.swing_height,
            args.base_height,
            args.seconds,
            args.fps,
        )
        command = "python scripts/make_reference_motion.py " + shlex.join(argv if argv is not None else sys.argv[1:])
        description = (
            f"parametric {args.gait}: speed {args.speed} m/s, {args.frequency} Hz, duty {args.duty}, swing height "
            f"{args.swing_height} m, base height {g['base_height']:.4f} m; made by: {command.strip()}"
        )
        save_motion(output, g["frames"], args.fps, go1.JOINT_NAMES, AMP_OBS_SEGMENTS, args.weight, description)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{output}: {len(g['frames'])} frames at {args.fps:g} fps, base height {g['base_height']:.4f} m")
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()

"""The Go1's left-right mirror (y -> -y): legs FL <-> FR and RL <-> RR, hip (abduction, axis x) angles negated.

Joint order (constants.py): FL, FR, RL, RR x (hip, thigh, calf). A hip turns about the trunk's x axis, which lies in
the mirror plane, so its angle changes sign (an axial vector's x component); thigh and calf turn about y, which the
mirror reverses twice (axis and handedness), so their angles keep their sign. The default pose (hips at 0) and the
joint ranges, gains and torque limits are the same on both sides, so an action (a joint target offset) mirrors as
a joint angle does.

The MJCF (go1.xml) mirrors exactly except the trunk's centre of mass, 2.2 mm to the left (y = +0.0022, from
Unitree's URDF): a mirrored state's physics then differs by that offset mirrored (tests/legged_env/test_symmetry.py
mirrors it in the model to check the rest exactly).
"""

import numpy as np

from legged_env.core import symmetry
from legged_env.robots.go1.constants import DEFAULT_JOINT_POS, LEGS

# The mirror of leg i is leg LEG_PERM[i] in LEGS = (FL, FR, RL, RR).
LEG_PERM = tuple(LEGS.index(leg[0] + {"L": "R", "R": "L"}[leg[1]]) for leg in LEGS)  # (1, 0, 3, 2)
HIP_SIGN = (-1.0, 1.0, 1.0)  # (hip, thigh, calf) of one leg


def joints() -> symmetry.Mirror:
    """``(12,)`` joint angles, velocities, targets and actions: legs swapped, hip signs flipped."""
    return symmetry.blocks(LEG_PERM, symmetry.signs(HIP_SIGN))


def joint_params() -> symmetry.Mirror:
    """``(12,)`` per-joint parameters (motor strength, damping scales): legs swapped, no signs."""
    return symmetry.blocks(LEG_PERM, symmetry.identity(3))


def legs() -> symmetry.Mirror:
    """``(4,)`` per-leg values (foot contacts, air times)."""
    return symmetry.blocks(LEG_PERM, symmetry.identity(1))


def leg_vectors() -> symmetry.Mirror:
    """``(12,)`` one position 3-vector per leg (foot positions in the base frame): legs swapped, y negated."""
    return symmetry.blocks(LEG_PERM, symmetry.signs(symmetry.POLAR))


def check_default_pose() -> None:
    """ValueError unless the default joint pose is its own mirror (actions are offsets from it)."""
    default = np.asarray(DEFAULT_JOINT_POS)
    if not np.allclose(symmetry.apply(joints(), default), default, atol=1e-9):
        raise ValueError("the Go1's DEFAULT_JOINT_POS is not left-right symmetric")

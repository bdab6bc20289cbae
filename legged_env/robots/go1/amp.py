"""The Go1 AMP observation: the per-frame state a motion-prior discriminator compares.

One AMP observation is the flat concatenation, in this order, of (43 floats):

- ``dof_pos`` (12,): joint angle minus the default joint angle (rad), joint order
  :data:`legged_env.robots.go1.constants.JOINT_NAMES` (FL, FR, RL, RR x hip, thigh, calf), default
  :data:`~legged_env.robots.go1.constants.DEFAULT_JOINT_POS`.
- ``dof_vel`` (12,): joint velocities (rad/s), same order.
- ``base_height`` (1,): height of the trunk (base) origin above the flat ground (m).
- ``base_lin_vel`` (3,): base linear velocity in the base frame (m/s).
- ``base_ang_vel`` (3,): base angular velocity in the base frame (rad/s).
- ``foot_pos`` (12,): the 4 foot (sphere) centres, FL, FR, RL, RR x (x, y, z), in the base frame (m);
  a foot resting on flat ground with the trunk level has ``z = -(base_height - foot radius)``.

A transition is a pair ``(s, s')`` one policy control step apart (0.02 s, 50 Hz). The env publishes
``s`` as ``infos["amp_obs"]`` (and ``infos["final_amp_obs"]`` before an auto-reset); reference clips
(``legged_env/robots/go1/motions/*.npz``, format in :mod:`st_rl.datasets.motion_loader`) store frames
with exactly this layout.
"""

from __future__ import annotations

from collections import OrderedDict

AMP_OBS_SEGMENTS: OrderedDict[str, tuple[int, ...]] = OrderedDict(
    [
        ("dof_pos", (12,)),
        ("dof_vel", (12,)),
        ("base_height", (1,)),
        ("base_lin_vel", (3,)),
        ("base_ang_vel", (3,)),
        ("foot_pos", (12,)),
    ]
)

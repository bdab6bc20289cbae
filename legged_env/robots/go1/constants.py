"""Unitree Go1-class quadruped: file locations, joint order and nominal values.

Joint order everywhere (actions, dof_pos, dof_vel, export): FL, FR, RL, RR x (hip, thigh, calf).
Torque limits and joint ranges live in go1.xml (actuator ctrlrange, joint range) and are read
from the compiled model, so there is a single source for them.
"""

from pathlib import Path

XML_PATH = Path(__file__).with_name("go1.xml")

LEGS = ("FL", "FR", "RL", "RR")
JOINT_NAMES = tuple(f"{leg}_{part}_joint" for leg in LEGS for part in ("hip", "thigh", "calf"))
FOOT_GEOMS = tuple(f"{leg}_foot" for leg in LEGS)
HIP_GEOMS = tuple(f"{leg}_hip" for leg in LEGS)
THIGH_GEOMS = tuple(f"{leg}_thigh" for leg in LEGS)
CALF_GEOMS = tuple(f"{leg}_calf" for leg in LEGS)
TRUNK_GEOM = "trunk"
HEAD_GEOMS = ("head",)
TRUNK_BODY = "trunk"
FOOT_RADIUS = 0.02

# Standing pose (rad): thigh 0.8 / calf -1.5 puts the feet under the hips at ~0.31 m base height.
DEFAULT_JOINT_POS = (0.0, 0.8, -1.5) * 4
# Spawn height (m): feet ~1 cm above the floor in the default pose.
SPAWN_HEIGHT = 0.34

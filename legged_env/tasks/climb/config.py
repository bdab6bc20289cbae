"""Default ``env`` section of the climb task. ``configs/climb.yaml`` overrides it key by key.

Observable quantities (segments) beyond walk's (legged_env/tasks/walk/task.py):

- ``engaging_block`` (6,): the next obstacle edge: distance (m, negative once on it), one-hot type
  (none, climb, jump_down), depth (flat length after the edge, m), signed critical height (m).
  Layout: legged_env/terrain/engaging_block.py (the field/climb mutex reads the same columns).
- ``height_scan`` (1, num_x, num_y): terrain height minus base height (m, clipped to +-clip) on a
  grid in the yaw-aligned base frame, from the track's own geometry (no ray casts).
- ``forward_depth`` (1, H, W): z-depth image (m, clipped to max_range; rays that hit nothing read
  max_range) of a camera on the trunk's front, by analytic ray-box casting, through a camera model
  (legged_env/core/sensors.py): latency, frame period, noise, missing pixels, near/far clipping, each
  a range sampled per env at every reset (blank = max_range until the first frame arrives). The defaults
  are an ideal camera: the clean image of the observed pose. Not in the default observations (it
  costs; see scripts/benchmark.py --task=climb).
- ``base_rpy`` (3,): roll, pitch, yaw (rad; ZYX Euler angles) of the base relative to the track frame (the
  world frame: the track runs along +x), what an IMU plus a heading estimate give.
- ``wall_distance`` (2,): horizontal distance (m) from the base centre to the inner face of the left (+y) and
  the right (-y) side wall, what a robot measures with its camera or a lidar.
- ``curriculum_level`` (1,), ``obstacle_height`` (1,): privileged track facts for a critic.
"""

from legged_env.tasks.walk import config as walk_config

ACTOR_SEGMENTS = {
    **walk_config.ACTOR_SEGMENTS,
    "base_rpy": {"scale": 1.0, "noise": 0.05},
    "wall_distance": {"scale": 1.0, "noise": 0.05},
    "engaging_block": {"scale": 1.0, "noise": 0.0},
    "height_scan": {"scale": 2.0, "noise": 0.02},
}
PRIVILEGED_SEGMENTS = {**walk_config.PRIVILEGED_SEGMENTS, "obstacle_height": {"scale": 1.0}}


def default_config() -> dict:
    """A fresh dict of every key of the climb task's ``env`` section."""
    cfg = walk_config.default_config()
    cfg.update(
        {
            "episode_length_s": 20.0,
            # forward velocity only (m/s, world x); vy and yaw-rate commands are 0
            "commands": {"resampling_time_s": 20.0, "lin_vel_x": [0.5, 1.0]},
            "terrain": {
                "num_obstacles": 2,  # boxes; each is a climb edge then a jump-down edge
                "obstacle_length": 1.2,  # box length along the track (m)
                "run_up": [1.0, 2.0],  # flat ground before the first box (m)
                "gap": [1.5, 2.5],  # flat ground after each box (m); after the last one: run-out
                "track_width": 1.6,
                "wall_height": 0.6,
                "wall_thickness": 0.05,
                # feet collide with the side walls (False: walls only seen by the scan/camera; 1.55x env-steps/s)
                "walls_collide": True,
                "height": [0.05, 0.45],  # obstacle height at level 0 and at the top level (m)
                "height_noise": 0.02,  # +- per box (m)
                "num_levels": 10,
                "init_level": "low",  # low: uniform in [0, init_max_level]; spread: env i at level i % num_levels
                "init_max_level": 2,
                "curriculum": True,  # False: every env keeps its level
                "pass_margin": 0.4,  # an edge is cleared once the base is this far beyond it (m)
                "goal_margin": 0.6,  # the track is finished this far beyond the last edge (m)
                # soft dynamics: obstacles do not collide; penetration of body points is penalised instead
                "virtual_obstacles": False,
            },
            "height_scan": {"x_range": [-0.5, 1.0], "y_range": [-0.3, 0.3], "num_x": 16, "num_y": 7, "clip": 1.0},
            "forward_depth": {
                "resolution": [48, 64],  # H, W
                "horizontal_fov_deg": 87.0,  # a RealSense D435's depth field of view
                "vertical_fov_deg": 58.0,
                "position": [0.28, 0.0, 0.04],  # camera in the trunk frame (m)
                "pitch": 0.5,  # down from the trunk's x axis (rad)
                "max_range": 2.0,
                # the camera model, each [lo, hi] drawn per env at every reset (legged_env/core/sensors.py); ideal:
                "latency_steps": [0, 0],  # policy steps from capture to observation (dt 0.02 s)
                "frame_period_steps": [1, 1],  # a new frame every P policy steps (5: 10 Hz), random phase
                "noise_std": [0.0, 0.0],  # m at 1 m depth, grows with depth squared
                "missing_prob": [0.0, 0.0],  # per pixel: reads 0 (no data)
                "near_clip": [0.0, 0.0],  # m: closer reads 0
                "far_clip": None,  # [lo, hi] m (<= max_range): farther reads max_range (no return); None: max_range
            },
        }
    )
    cfg["init_state"]["yaw"] = [-0.2, 0.2]
    cfg["observations"] = {
        "actor": {k: dict(v) for k, v in ACTOR_SEGMENTS.items()},
        "critic": {**{k: {"scale": v["scale"]} for k, v in ACTOR_SEGMENTS.items()}, **PRIVILEGED_SEGMENTS},
        "amp": {},
    }
    cfg["rewards"] = {
        "scales": {
            "tracking_world_vel": 1.5,
            "alive": 1.0,
            "energy": -1.0e-6,
            "dof_pos_limits": -10.0,
            "torque_limits": -0.1,
            "collision": -1.0,
            "orientation": -0.5,
            "action_rate": -0.01,
            "dof_acc": -2.5e-7,
            "penetration": -1.0,
        },
        "tracking_sigma": 0.25,
        "soft_dof_pos_limit": 0.9,
        "soft_torque_limit": 0.9,
        "feet_air_time_target": 0.5,
        "only_positive_rewards": True,
    }
    # contact_geoms: trunk / thigh / calf touching the terrain end the episode; off_track: |y| beyond the walls
    cfg["terminations"] = {"max_roll": 1.0, "max_pitch": 1.2, "contact_geoms": ["trunk"], "off_track": True}
    cfg["domain_rand"]["push_interval_s"] = 8.0
    cfg["domain_rand"]["push_vel_xy"] = 0.3
    return cfg


OPEN_KEYS = walk_config.OPEN_KEYS

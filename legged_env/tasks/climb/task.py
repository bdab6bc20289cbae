"""Climb: run along an obstacle track (legged_env/terrain/tracks.py), climbing up and jumping down boxes.

Walk's robot, control, domain randomisation and proprioception, plus: a per-env track whose
obstacle heights follow a per-env curriculum level, forward-velocity commands in the world frame,
the ``engaging_block`` / ``height_scan`` / ``forward_depth`` segments, climb rewards and
terminations (roll/pitch limits, trunk contact, leaving the track, time-out), and an episode that
ends as a success (a truncation, not a failure) once the robot is past the last obstacle.
"""

import copy
import functools

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from legged_env.core import contacts, sensors, symmetry
from legged_env.core.math import quat_rotate, quat_to_rpy
from legged_env.errors import ConfigError
from legged_env.tasks.climb.rewards import REWARDS
from legged_env.tasks.walk.task import WalkTask
from legged_env.terrain import curriculum, raycast, tracks
from legged_env.terrain.engaging_block import ENGAGING_BLOCK_SIZE

_INIT_LEVEL_MODES = ("low", "spread")


class ClimbTask(WalkTask):
    """Obstacle-track climbing. Quantities: walk's plus those in ``legged_env/tasks/climb/config.py``."""

    reward_functions = REWARDS
    DELAYED_QUANTITIES = (*WalkTask.DELAYED_QUANTITIES, "base_rpy")

    def __init__(self, cfg: dict, num_envs: int, seed: int = 0, source: str = "<config>"):
        self.track = tracks.TrackSpec(cfg["terrain"])
        if cfg["terrain"]["init_level"] not in _INIT_LEVEL_MODES:
            raise ConfigError(
                f"env.terrain.init_level in {source} must be one of {', '.join(_INIT_LEVEL_MODES)}, "
                f"got {cfg['terrain']['init_level']!r}"
            )
        hs = cfg["height_scan"]
        self.scan_points = tracks.scan_points(hs["x_range"], hs["y_range"], hs["num_x"], hs["num_y"])
        fd = cfg["forward_depth"]
        self.depth_hw = tuple(int(v) for v in fd["resolution"])
        if len(self.depth_hw) != 2 or min(self.depth_hw) < 1:
            raise ConfigError(f"env.forward_depth.resolution in {source} must be [H, W] >= 1, got {fd['resolution']}")
        # the camera model (legged_env/core/sensors.py): latency, frame rate, noise, missing pixels, range limits
        self.camera_ranges = sensors.camera_ranges(fd, source)
        self.depth_history = self.camera_ranges["latency_steps"][1] + 1
        self.depth_dirs = jnp.asarray(
            raycast.camera_ray_dirs(
                *self.depth_hw, np.radians(fd["horizontal_fov_deg"]), np.radians(fd["vertical_fov_deg"])
            )
        )
        obs_cfg = cfg["observations"]
        # The depth image is rendered only when an observation group uses it (it is the costly quantity).
        self.uses_depth = any("forward_depth" in (obs_cfg.get(g) or {}) for g in ("actor", "critic", "amp"))
        # An ideal camera (the defaults) is the clean image of the observed pose; any other is kept in the state.
        self.depth_pipeline = self.uses_depth and not sensors.camera_is_ideal(self.camera_ranges, fd["max_range"])
        super().__init__(cfg, num_envs, seed, source)
        ids = [
            mujoco.mj_name2id(self.mj_model, mujoco.mjtObj.mjOBJ_GEOM, f"{tracks.BOX_PREFIX}{k}")
            for k in range(self.track.num_boxes)
        ]
        self.box_geoms = jnp.array(ids)
        self.collider_geom = mujoco.mj_name2id(self.mj_model, mujoco.mjtObj.mjOBJ_GEOM, tracks.COLLIDER)

    # ------------------------------------------------------------------ model and track
    def model_xml(self) -> str:
        xml = super().model_xml()
        if "</worldbody>" not in xml:
            raise ConfigError(f"{self.robot.XML_PATH} has no </worldbody> to add the track to")
        return xml.replace("</worldbody>", self.track.mjcf_geoms() + "\n</worldbody>", 1)

    def mj_model_of(self, state, index: int) -> mujoco.MjModel:
        model = copy.copy(self.mj_model)
        track = jax.tree.map(lambda x: x[index], state.info["track"])
        model.geom_pos[np.asarray(self.box_geoms)] = np.asarray(self.track.geom_pos(track))
        base_x = jnp.asarray(state.data.qpos[index, 0])
        model.geom_pos[self.collider_geom] = np.asarray(self.track.collider_pos(track, base_x))
        return model

    def episode_model(self, model, info: dict, qpos: jax.Array):
        # the visual boxes (for mjx.ray checks) and the one colliding box, on the obstacle the robot is at
        pos = model.geom_pos.at[self.box_geoms].set(self.track.geom_pos(info["track"]))
        pos = pos.at[self.collider_geom].set(self.track.collider_pos(info["track"], qpos[0]))
        return model.replace(geom_pos=pos)

    def terrain_boxes(self, info: dict) -> jax.Array:
        """``(K + 2, 6)`` boxes of this env's terrain: obstacles and walls."""
        return self.track.boxes(info["track"])

    def ground_function(self, info: dict):
        # What the robot stands on and collides with: without physical obstacles (virtual), the floor and walls.
        boxes = self.track.walls if self.track.virtual else self.terrain_boxes(info)
        return functools.partial(tracks.terrain_height, boxes)

    # ------------------------------------------------------------------ episodes and curriculum
    def initial_carry(self, rng: jax.Array) -> dict:
        t = self.cfg["terrain"]
        levels = curriculum.initial_levels(
            rng, self.num_envs, self.track.num_levels, t["init_level"], t["init_max_level"]
        )
        return {"level": levels}

    def next_episode_carry(self, info: dict, q: dict, terminated: jax.Array, time_out: jax.Array) -> dict:
        if not self.cfg["terrain"]["curriculum"]:
            return {"level": info["level"]}
        success = q["goal_reached"] & ~terminated
        rng = jax.random.fold_in(info["rng"], 1)
        return {"level": curriculum.next_level(info["level"], success, rng, self.track.num_levels)}

    def _sample_commands(self, rng: jax.Array) -> jax.Array:
        lo, hi = self.cfg["commands"]["lin_vel_x"]
        return jnp.array([jax.random.uniform(rng, (), minval=lo, maxval=hi), 0.0, 0.0])

    def reset_task_info(self, rng: jax.Array, info: dict) -> dict:
        k_walk, k_track = jax.random.split(rng)
        out = super().reset_task_info(k_walk, info)
        out["track"] = self.track.sample(k_track, info["level"])
        out["max_x"] = jnp.zeros(())
        if self.depth_pipeline:
            # this episode's camera, its last clean images (oldest first) and the frame the policy sees: blank
            max_range = self.cfg["forward_depth"]["max_range"]
            out["depth_camera"] = sensors.sample_camera(jax.random.fold_in(rng, 7), self.camera_ranges)
            out["depth_buffer"] = sensors.blank_images(self.depth_history, self.depth_hw, max_range)
            out["depth_frame"] = sensors.blank_images(1, self.depth_hw, max_range)[0]
        return out

    # ------------------------------------------------------------------ quantities
    def quantity_shapes(self) -> dict[str, tuple[int, ...]]:
        hs = self.cfg["height_scan"]
        return {
            **super().quantity_shapes(),
            "base_rpy": (3,),
            "wall_distance": (2,),
            "engaging_block": (ENGAGING_BLOCK_SIZE,),
            "height_scan": (1, hs["num_x"], hs["num_y"]),
            "forward_depth": (1, *self.depth_hw),
            "curriculum_level": (1,),
            "obstacle_height": (1,),
        }

    def quantity_mirrors(self) -> dict:
        """Walk's mirrors plus the climb quantities'. The track (boxes and walls) is symmetric about y = 0, so the
        x-only track facts are their own mirror; the scan and the camera mirror only when they are symmetric."""
        hs, fd = self.cfg["height_scan"], self.cfg["forward_depth"]
        scan_shape = self.quantity_shapes()["height_scan"]
        depth_shape = self.quantity_shapes()["forward_depth"]
        if hs["y_range"][0] == -hs["y_range"][1]:
            scan = symmetry.flip_axis(scan_shape, 2)  # (1, num_x, num_y): y is the last axis, from y_range[0]
        else:
            scan = f"env.height_scan.y_range {hs['y_range']} is not symmetric about 0"
        if fd["position"][1] == 0.0:
            depth = symmetry.flip_axis(depth_shape, 2)  # (1, H, W): column 0 is the left edge
        else:
            depth = f"env.forward_depth.position has y = {fd['position'][1]}, off the mirror plane"
        return {
            **super().quantity_mirrors(),
            "base_rpy": symmetry.signs((-1.0, 1.0, -1.0)),  # roll, pitch, yaw
            "wall_distance": symmetry.swap(2),  # (left, right)
            "engaging_block": symmetry.identity(ENGAGING_BLOCK_SIZE),
            "height_scan": scan,
            "forward_depth": depth,
            "curriculum_level": symmetry.identity(1),
            "obstacle_height": symmetry.identity(1),
        }

    def render_depth(self, qpos: jax.Array, info: dict) -> jax.Array:
        """``(H, W)`` z-depth image of the head camera at this pose, without latency."""
        fd = self.cfg["forward_depth"]
        cam_pos, cam_rot = raycast.camera_pose(qpos[:3], qpos[3:7], jnp.array(fd["position"]), fd["pitch"])
        return raycast.depth_image(self.terrain_boxes(info), cam_pos, cam_rot, self.depth_dirs, fd["max_range"])

    def obs_quantities(self, qpos, qvel, info: dict, foot_contacts) -> dict:
        q = super().obs_quantities(qpos, qvel, info, foot_contacts)
        heading = quat_rotate(qpos[3:7], jnp.array([1.0, 0.0, 0.0]))
        yaw = jnp.arctan2(heading[1], heading[0])
        boxes = self.terrain_boxes(info)
        q["base_rpy"] = quat_to_rpy(qpos[3:7])
        half_width = self.track.width / 2
        q["wall_distance"] = jnp.stack([half_width - qpos[1], half_width + qpos[1]])
        q["engaging_block"] = self.track.engaging_block(info["track"], qpos[0])
        q["height_scan"] = tracks.height_scan(boxes, self.scan_points, qpos[:3], yaw, self.cfg["height_scan"]["clip"])
        if self.uses_depth:
            image = info["depth_frame"] if self.depth_pipeline else self.render_depth(qpos, info)
            q["forward_depth"] = image[None]
        q["curriculum_level"] = info["level"].astype(jnp.float32)[None]
        q["obstacle_height"] = self.track.level_height(info["level"])[None]
        return q

    def body_points(self, data) -> jax.Array:
        """``(28, 3)`` points sampling the robot's volume for the penetration penalty: trunk corners, the lowest
        points of both ends of every thigh and calf capsule, and of the feet."""
        g, drop = data.geom_xpos, jnp.array([0.0, 0.0, 1.0])
        trunk = contacts.box_corners(g[self.trunk_geom], data.geom_xmat[self.trunk_geom], self.trunk_half_size)
        ends = contacts.capsule_ends(g[self.leg_geoms], data.geom_xmat[self.leg_geoms], self.leg_half_len)
        ends = (ends - self.leg_radius[:, None, None] * drop).reshape(-1, 3)
        feet = g[self.foot_geoms] - self.foot_radius[:, None] * drop
        return jnp.concatenate([trunk, ends, feet])

    def quantities(self, data, info: dict, action, tau, power) -> dict:
        q = super().quantities(data, info, action, tau, power)
        track = info["track"]
        base = data.qpos[:3]
        # Penetration: depth of body points below the top of the obstacle they are over (the soft-dynamics
        # penalty; with hard obstacles it only sees the contact model's millimetres).
        points = self.body_points(data)
        top = tracks.terrain_height(self.terrain_boxes(info)[: self.track.num_boxes], points[:, :2])
        depth = jnp.where(top > 0, jnp.clip(top - points[:, 2], 0.0), 0.0)
        max_x = jnp.maximum(info["max_x"], base[0])
        g = q["projected_gravity"]
        q.update(
            world_lin_vel=data.qvel[:3],
            torque_limits=self.torque_limits,
            penetration=jnp.sum(depth),
            roll=jnp.abs(jnp.arctan2(g[1], -g[2])),
            pitch=jnp.abs(jnp.arcsin(jnp.clip(g[0], -1.0, 1.0))),
            off_track=jnp.abs(base[1]) > self.track.width / 2,
            max_x=max_x,
            goal_reached=base[0] > self.track.goal_x(track),
            obstacles_cleared=self.track.cleared(track, max_x).astype(jnp.float32),
            collision_count=jnp.sum(q["leg_contacts"]) + q["hip_contact"] + q["trunk_contact"],
        )
        if self.depth_pipeline:
            q["rendered_depth"] = self.render_depth(data.qpos, info)
        return q

    def terminated(self, q: dict) -> jax.Array:
        t = self.cfg["terminations"]
        hit = jnp.zeros((), dtype=bool)
        for g in t["contact_geoms"]:
            hit = hit | q[f"{g}_contact"]
        tilted = (q["roll"] > t["max_roll"]) | (q["pitch"] > t["max_pitch"])
        return hit | tilted | (q["off_track"] & t["off_track"])

    def truncated(self, q: dict) -> jax.Array:
        return q["goal_reached"]

    def update_task_info(self, info: dict, q: dict) -> dict:
        info = {**super().update_task_info(info, q), "max_x": q["max_x"]}
        if "rendered_depth" in q:
            info["depth_buffer"], info["depth_frame"] = sensors.camera_step(
                info["depth_buffer"],
                info["depth_frame"],
                info["depth_camera"],
                q["rendered_depth"],
                info["step"],
                jax.random.fold_in(info["rng"], 3),
                self.cfg["forward_depth"]["max_range"],
            )
        return info

    # ------------------------------------------------------------------ metrics
    episode_end_metrics = ("level", "obstacle_height", "obstacles_cleared", "goal_reached")

    def summarize_episodes(self, at_end: dict, fell) -> dict:
        """play.py's climb metrics from each episode's last step: success rate (track finished), obstacles
        cleared and falls, overall and per obstacle-height bucket (one bucket per curriculum level)."""
        success, cleared, fell = at_end["goal_reached"], at_end["obstacles_cleared"], fell.float()
        by_height = {}
        for level in sorted(set(at_end["level"].long().tolist())):
            sel = at_end["level"].long() == level
            height = float(self.track.level_height(level))
            by_height[f"{height:.3f}"] = {
                "level": level,
                "episodes": int(sel.sum()),
                "success_rate": float(success[sel].mean()),
                "obstacles_cleared": float(cleared[sel].mean()),
                "fall_rate": float(fell[sel].mean()),
            }
        return {
            "success_rate": float(success.mean()),
            "obstacles_cleared_per_episode": float(cleared.mean()),
            "obstacles_per_track": 2 * self.track.num_boxes,
            "by_obstacle_height": by_height,
        }

    def _reset_metrics(self, sums: dict) -> dict:
        f = jnp.zeros(())
        return {
            **super()._reset_metrics(sums),
            "level": f,
            "obstacle_height": f,
            "obstacles_cleared": f,
            "goal_reached": f > 0,
            "progress": f,
        }

    def step_metrics(self, q: dict, sums: dict, power: jax.Array) -> dict:
        return {
            **super().step_metrics(q, sums, power),
            "level": q["curriculum_level"][0],
            "obstacle_height": q["obstacle_height"][0],
            "obstacles_cleared": q["obstacles_cleared"],
            "goal_reached": q["goal_reached"],
            "progress": q["max_x"],
        }

    def episode_logs(self, metrics: dict, dones) -> dict:
        """Curriculum logs (torch 0-d tensors, every step): mean level over all envs and the success rate of the
        episodes that ended at each level (``success_level_<k>``, NaN where none ended), without host syncs."""
        levels = metrics["level"].long().reshape(-1, 1)
        ended_at = (levels == levels.new_tensor(list(range(self.track.num_levels)))) & dones.reshape(-1, 1)
        success = metrics["goal_reached"].bool().reshape(-1, 1)
        rates = (ended_at & success).sum(0) / ended_at.sum(0)  # (num_levels,); 0 / 0 = NaN
        logs = {"curriculum_level": metrics["level"].float().mean()}
        logs.update({f"success_level_{k:02d}": rates[k] for k in range(self.track.num_levels)})
        return logs

"""numpy twin of the climb track (``legged_env/terrain/tracks.py``, which imports JAX) for sim2sim: the same
sampling rules, geometry and observation formulas (``engaging_block``, ``height_scan``, ``base_rpy``), checked
against the env by ``tests/legged_env/test_sim2sim_climb.py``."""

import math

import numpy as np

from legged_env.terrain.engaging_block import ENGAGING_BLOCK_SIZE, OBSTACLE_TYPES

# tracks.py's names and constants (the track geoms of the training model)
BOX_HALF_HEIGHT = 0.5
BOX_PREFIX = "track_box"
COLLIDER = "track_collider"
WALL_NAMES = ("track_wall_left", "track_wall_right")
CLIMB, JUMP_DOWN, NONE = (OBSTACLE_TYPES.index(k) for k in ("climb", "jump_down", "none"))


class Track:
    """numpy twin of ``legged_env.terrain.tracks.TrackSpec`` (same formulas) for an ``env.terrain`` config.

    A track is a dict of float64 arrays: ``box_x0`` (K,) near edges, ``box_h`` (K,) heights, ``gap`` (K,) flat
    length after each box (the last one: the run-out)."""

    def __init__(self, terrain: dict):
        self.cfg = terrain
        self.num_boxes = int(terrain["num_obstacles"])
        self.num_levels = int(terrain["num_levels"])
        self.run_up = tuple(float(v) for v in terrain["run_up"])
        self.gap = tuple(float(v) for v in terrain["gap"])
        self.height = tuple(float(v) for v in terrain["height"])
        self.length = float(terrain["obstacle_length"])
        self.width = float(terrain["track_width"])
        self.virtual = bool(terrain["virtual_obstacles"])
        self.pass_margin = float(terrain["pass_margin"])
        self.goal_margin = float(terrain["goal_margin"])
        self.max_length = self.run_up[1] + self.num_boxes * (self.length + self.gap[1])
        t = float(terrain["wall_thickness"])
        y_in, y_out, top = self.width / 2, self.width / 2 + t, float(terrain["wall_height"])
        x_lo, x_hi = -2.0, self.max_length + 2.0
        self.walls = np.array(
            [[x_lo, y_in, -BOX_HALF_HEIGHT, x_hi, y_out, top], [x_lo, -y_out, -BOX_HALF_HEIGHT, x_hi, -y_in, top]]
        )

    def level_height(self, level) -> float:
        """Nominal obstacle height (m) of a curriculum level."""
        frac = level / max(self.num_levels - 1, 1)
        return self.height[0] + (self.height[1] - self.height[0]) * frac

    def sample(self, rng: np.random.Generator, level: int) -> dict:
        """A random track at ``level``: the rules of ``TrackSpec.sample`` (uniform run-up, gaps and height jitter)."""
        run_up = rng.uniform(*self.run_up)
        gap = rng.uniform(*self.gap, size=self.num_boxes)
        noise = float(self.cfg["height_noise"])
        jitter = rng.uniform(-noise, noise, size=self.num_boxes)
        box_h = np.maximum(self.level_height(level) + jitter, 0.01)
        starts = run_up + np.concatenate([np.zeros(1), np.cumsum(self.length + gap)[:-1]])
        return {"box_x0": starts, "box_h": box_h, "gap": gap}

    def geom_pos(self, track: dict) -> np.ndarray:
        """``(K, 3)`` centres of the obstacle boxes (``2 * BOX_HALF_HEIGHT`` tall, sunk into the floor)."""
        x = track["box_x0"] + self.length / 2
        return np.stack([x, np.zeros_like(x), track["box_h"] - BOX_HALF_HEIGHT], axis=-1)

    def collider_pos(self, track: dict, base_x: float) -> np.ndarray:
        """The training model's one colliding box: on the obstacle nearest to ``base_x``."""
        x0 = track["box_x0"]
        dist = np.maximum(np.maximum(x0 - base_x, base_x - (x0 + self.length)), 0.0)
        return self.geom_pos(track)[int(np.argmin(dist))]

    def boxes(self, track: dict) -> np.ndarray:
        """``(K + 2, 6)`` boxes ``[xmin, ymin, zmin, xmax, ymax, zmax]``: obstacles, then walls."""
        x0, h = track["box_x0"], track["box_h"]
        w = np.full_like(x0, self.width / 2)
        obstacles = np.stack([x0, -w, h - 2 * BOX_HALF_HEIGHT, x0 + self.length, w, h], axis=-1)
        return np.concatenate([obstacles, self.walls], axis=0)

    def edges(self, track: dict) -> dict:
        """Obstacle edges in order (climb 1, jump-down 1, climb 2, ...): ``x``, ``type``, ``depth``, ``height``."""
        x0, h, gap = track["box_x0"], track["box_h"], track["gap"]
        k = self.num_boxes

        def interleave(a, b):
            return np.stack([a, b], axis=-1).reshape(2 * k)

        return {
            "x": interleave(x0, x0 + self.length),
            "type": interleave(np.full(k, CLIMB), np.full(k, JUMP_DOWN)),
            "depth": interleave(np.full(k, self.length), gap),
            "height": interleave(h, -h),
        }

    def goal_x(self, track: dict) -> float:
        """The track is finished once the base passes this x: the last jump-down edge plus ``goal_margin``."""
        return float(track["box_x0"][-1] + self.length + self.goal_margin)

    def engaging_block(self, track: dict, base_x: float) -> np.ndarray:
        """``(6,)``: distance, one-hot type, depth, signed height of the first edge not ``pass_margin`` behind."""
        e = self.edges(track)
        ahead = e["x"] + self.pass_margin > base_x
        out = np.zeros(ENGAGING_BLOCK_SIZE)
        if not ahead.any():
            out[1 + NONE] = 1.0
            return out
        i = int(np.argmax(ahead))
        out[0] = e["x"][i] - base_x
        out[1 + int(e["type"][i])] = 1.0
        out[-2:] = e["depth"][i], e["height"][i]
        return out

    def cleared(self, track: dict, max_x: float) -> int:
        """Number of edges the base got ``pass_margin`` beyond (``max_x``: furthest base x so far)."""
        return int(np.sum(self.edges(track)["x"] + self.pass_margin <= max_x))

    def mjcf_geoms(self, physics: str) -> str:
        """MJCF ``<geom>`` elements of the track (boxes start far away; :meth:`MujocoDeployment.set_track` places
        them). ``training``: ``TrackSpec.mjcf_geoms`` (visual boxes, one colliding box, visual wall boxes and,
        with ``walls_collide``, colliding wall planes). ``referee``: every obstacle and both walls as boxes
        (their contact bits are set with the robot's)."""
        h, w = BOX_HALF_HEIGHT, self.width / 2
        size = f"{self.length / 2} {w} {h}"
        visual = 'contype="0" conaffinity="0" ' if physics == "training" else ""
        geoms = [
            f'<geom name="{BOX_PREFIX}{k}" type="box" size="{size}" pos="{-100.0 - 10 * k} 0 {-h}" '
            f'{visual}group="2" rgba="0.55 0.45 0.35 1"/>'
            for k in range(self.num_boxes)
        ]
        if physics == "training":
            aff = 0 if self.virtual else 3
            geoms.append(
                f'<geom name="{COLLIDER}" type="box" size="{size}" pos="-100.0 0 {-h}" contype="0" '
                f'conaffinity="{aff}" condim="1" friction="1.0 0.02 0.01" group="2" rgba="0 0 0 0"/>'
            )
        for name, b in zip(WALL_NAMES, self.walls.tolist(), strict=True):
            size = " ".join(str((b[i + 3] - b[i]) / 2) for i in range(3))
            pos = " ".join(str((b[i + 3] + b[i]) / 2) for i in range(3))
            geoms.append(
                f'<geom name="{name}" type="box" size="{size}" pos="{pos}" {visual}group="2" rgba="0.4 0.4 0.45 0.3"/>'
            )
        if physics == "training" and self.cfg["walls_collide"]:
            for name, sign in zip(WALL_NAMES, (1.0, -1.0), strict=True):
                geoms.append(
                    f'<geom name="{name}_plane" type="plane" size="0 0 0.05" pos="0 {sign * w} 0" '
                    f'zaxis="0 {-sign} 0" contype="0" conaffinity="3" condim="1" friction="1.0 0.02 0.01" '
                    f'group="2" rgba="0 0 0 0"/>'
                )
        return "\n".join(geoms)


def terrain_height(boxes: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Ground height (m) under points ``xy (..., 2)`` on the floor (z = 0) with ``boxes (B, 6)``: ``(...)``."""
    x, y = xy[..., None, 0], xy[..., None, 1]
    inside = (x >= boxes[:, 0]) & (x <= boxes[:, 3]) & (y >= boxes[:, 1]) & (y <= boxes[:, 4])
    return np.maximum(np.max(np.where(inside, boxes[:, 5], 0.0), axis=-1), 0.0)


def scan_points(x_range, y_range, num_x: int, num_y: int) -> np.ndarray:
    """``(num_x, num_y, 2)`` grid of scan points in the yaw-aligned base frame (x forward, y left)."""
    xs = np.linspace(x_range[0], x_range[1], num_x)
    ys = np.linspace(y_range[0], y_range[1], num_y)
    return np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1)


def height_scan(boxes: np.ndarray, points: np.ndarray, base_pos, yaw: float, clip: float) -> np.ndarray:
    """Terrain height minus base height at ``points (X, Y, 2)`` rotated by the base yaw, clipped: ``(1, X, Y)``."""
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[c, -s], [s, c]])
    world = np.asarray(base_pos[:2]) + points @ rot.T
    return np.clip(terrain_height(boxes, world) - base_pos[2], -clip, clip)[None]


def quat_to_rpy(quat) -> np.ndarray:
    """(roll, pitch, yaw) of a unit quaternion (w, x, y, z): ZYX Euler angles (``legged_env.core.math``)."""
    w, x, y, z = quat
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(min(max(2.0 * (w * y - z * x), -1.0), 1.0))
    yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return np.array([roll, pitch, yaw])

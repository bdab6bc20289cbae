"""Obstacle tracks: a flat run-up, then boxes along +x between two side walls.

One env's track, in the world frame (every env has its own copy of the world; the robot spawns at
the origin facing +x)::

    x = 0         x0_1            x0_1 + L        x0_2 ...                       goal
    |-- run-up --|== box 1 (h_1) ==|---- gap ----|== box 2 (h_2) ==|-- run-out --|
                 ^ climb edge      ^ jump-down edge

Each box is an obstacle pair: its near edge is a climb (a step up of ``h``), its far edge a
jump-down (a step down of ``h``). Box length ``L`` is fixed by the config; the run-up, the gaps
and the heights are sampled per env and per episode from the env's curriculum level, and enter
the physics through the per-env ``geom_pos`` of the box geoms (the boxes are ``2 * BOX_HALF_HEIGHT``
tall and sunk into the floor, so the position alone sets the top height). Side walls are fixed.

The whole terrain is the floor plane plus axis-aligned boxes, so the ground height, the
``engaging_block`` observation and ray casts are exact closed-form functions of a few numbers
per env (no height field, no ray casts for the height scan).

A track is a dict of JAX arrays (per env; batched ones add a leading ``num_envs`` axis):
``box_x0`` (K,) near edges, ``box_h`` (K,) heights, ``gap`` (K,) flat length after each box
(the last one is the run-out to the goal).
"""

import jax
import jax.numpy as jnp

from legged_env.errors import ConfigError
from legged_env.terrain.engaging_block import OBSTACLE_TYPES

BOX_HALF_HEIGHT = 0.5
BOX_PREFIX = "track_box"
COLLIDER = "track_collider"
WALL_NAMES = ("track_wall_left", "track_wall_right")
CLIMB, JUMP_DOWN, NONE = OBSTACLE_TYPES.index("climb"), OBSTACLE_TYPES.index("jump_down"), OBSTACLE_TYPES.index("none")


def _range(cfg: dict, key: str, lo_min: float = 0.0) -> tuple[float, float]:
    value = cfg[key]
    if len(value) != 2 or not (lo_min <= value[0] <= value[1]):
        raise ConfigError(f"env.terrain.{key} must be [low, high] with {lo_min} <= low <= high, got {value!r}")
    return float(value[0]), float(value[1])


class TrackSpec:
    """The static shape of every env's track (from ``env.terrain``) and the functions over one track."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.num_boxes = int(cfg["num_obstacles"])
        if self.num_boxes < 1:
            raise ConfigError(f"env.terrain.num_obstacles must be >= 1, got {self.num_boxes}")
        self.num_levels = int(cfg["num_levels"])
        if self.num_levels < 1:
            raise ConfigError(f"env.terrain.num_levels must be >= 1, got {self.num_levels}")
        self.run_up = _range(cfg, "run_up")
        self.gap = _range(cfg, "gap", lo_min=0.1)
        self.height = _range(cfg, "height")
        self.length = float(cfg["obstacle_length"])
        self.width = float(cfg["track_width"])
        if self.length <= 0 or self.width <= 0:
            raise ConfigError("env.terrain.obstacle_length and track_width must be > 0")
        self.virtual = bool(cfg["virtual_obstacles"])
        # Longest possible track: the walls cover it, with 2 m to spare at both ends.
        self.max_length = self.run_up[1] + self.num_boxes * (self.length + self.gap[1])
        t = float(cfg["wall_thickness"])
        y_in, y_out, top = self.width / 2, self.width / 2 + t, float(cfg["wall_height"])
        x_lo, x_hi = -2.0, self.max_length + 2.0
        self.walls = jnp.array(
            [[x_lo, y_in, -BOX_HALF_HEIGHT, x_hi, y_out, top], [x_lo, -y_out, -BOX_HALF_HEIGHT, x_hi, -y_in, top]],
            dtype=jnp.float32,
        )

    # ------------------------------------------------------------------ model
    def mjcf_geoms(self) -> str:
        """MJCF ``<geom>`` elements of the training physics' terrain (boxes placed far away; ``geom_pos`` moves
        them per env).

        - ``track_box<k>``: every obstacle box, visual only (rendering, ``mj_ray`` checks): contype and
          conaffinity 0.
        - ``track_collider``: the one box that collides, moved every policy step onto the obstacle the robot is
          at (:meth:`collider_pos`): boxes are at least ``gap[0]`` apart, so the robot touches one at a time,
          and MJX's cost grows with every robot geom x box pair. It collides with the whole robot unless
          ``virtual_obstacles`` (soft dynamics).
        - walls: boxes (visual) and, when ``walls_collide``, a colliding plane at each inner face (a plane is
          far cheaper in MJX than a box; they differ only above ``wall_height``, beyond the track).

        Terrain geoms are in geom group 2 (the robot's are in 0), so ray casts can exclude the robot; they carry
        the contact's friction (randomised per env; the robot's geoms have less) and condim 1 (feet make it 3).
        """
        aff = 0 if self.virtual else 3  # both robot bits: feet (1) and the other body parts (2)
        h, w = BOX_HALF_HEIGHT, self.width / 2
        size = f"{self.length / 2} {w} {h}"
        geoms = [
            f'<geom name="{BOX_PREFIX}{k}" type="box" size="{size}" pos="{-100.0 - 10 * k} 0 {-h}" '
            f'contype="0" conaffinity="0" group="2" rgba="0.55 0.45 0.35 1"/>'
            for k in range(self.num_boxes)
        ]
        geoms.append(
            f'<geom name="{COLLIDER}" type="box" size="{size}" pos="-100.0 0 {-h}" contype="0" conaffinity="{aff}" '
            f'condim="1" friction="1.0 0.02 0.01" group="2" rgba="0 0 0 0"/>'
        )
        for name, b in zip(WALL_NAMES, self.walls.tolist(), strict=True):
            size = " ".join(str((b[i + 3] - b[i]) / 2) for i in range(3))
            pos = " ".join(str((b[i + 3] + b[i]) / 2) for i in range(3))
            geoms.append(
                f'<geom name="{name}" type="box" size="{size}" pos="{pos}" contype="0" conaffinity="0" '
                f'group="2" rgba="0.4 0.4 0.45 0.3"/>'
            )
        if self.cfg["walls_collide"]:
            for name, sign in zip(WALL_NAMES, (1.0, -1.0), strict=True):
                geoms.append(
                    f'<geom name="{name}_plane" type="plane" size="0 0 0.05" pos="0 {sign * w} 0" '
                    f'zaxis="0 {-sign} 0" contype="0" conaffinity="3" condim="1" friction="1.0 0.02 0.01" '
                    f'group="2" rgba="0 0 0 0"/>'
                )
        return "\n".join(geoms)

    def geom_pos(self, track: dict) -> jax.Array:
        """``(K, 3)`` centres of the box geoms of one track."""
        x = track["box_x0"] + self.length / 2
        return jnp.stack([x, jnp.zeros_like(x), track["box_h"] - BOX_HALF_HEIGHT], axis=-1)

    def collider_pos(self, track: dict, base_x: jax.Array) -> jax.Array:
        """``(3,)`` centre of the colliding box for a base at ``base_x``: the obstacle nearest to it along x
        (the switch happens mid-gap, at least ``gap[0] / 2`` from either box)."""
        x0 = track["box_x0"]
        dist = jnp.maximum(jnp.maximum(x0 - base_x, base_x - (x0 + self.length)), 0.0)
        return self.geom_pos(track)[jnp.argmin(dist)]

    # ------------------------------------------------------------------ sampling
    def level_height(self, level: jax.Array) -> jax.Array:
        """Nominal obstacle height (m) of a curriculum level: ``height[0]`` at level 0 to ``height[1]`` at the top."""
        frac = level / max(self.num_levels - 1, 1)
        return self.height[0] + (self.height[1] - self.height[0]) * frac

    def sample(self, rng: jax.Array, level: jax.Array) -> dict:
        """A random track of one env at ``level`` (``()`` int)."""
        k_run, k_gap, k_h = jax.random.split(rng, 3)
        run_up = jax.random.uniform(k_run, (), minval=self.run_up[0], maxval=self.run_up[1])
        gap = jax.random.uniform(k_gap, (self.num_boxes,), minval=self.gap[0], maxval=self.gap[1])
        noise = float(self.cfg["height_noise"])
        jitter = jax.random.uniform(k_h, (self.num_boxes,), minval=-noise, maxval=noise)
        box_h = jnp.maximum(self.level_height(level) + jitter, 0.01)
        starts = run_up + jnp.concatenate([jnp.zeros(1), jnp.cumsum(self.length + gap)[:-1]])
        return {"box_x0": starts, "box_h": box_h, "gap": gap}

    # ------------------------------------------------------------------ geometry of one track
    def boxes(self, track: dict) -> jax.Array:
        """``(K + 2, 6)`` axis-aligned boxes ``[xmin, ymin, zmin, xmax, ymax, zmax]``: obstacles, then walls."""
        x0, h = track["box_x0"], track["box_h"]
        w = jnp.full_like(x0, self.width / 2)
        obstacles = jnp.stack([x0, -w, h - 2 * BOX_HALF_HEIGHT, x0 + self.length, w, h], axis=-1)
        return jnp.concatenate([obstacles, self.walls], axis=0)

    def edges(self, track: dict) -> dict:
        """The track's obstacle edges in order: ``x``, ``type`` (index into OBSTACLE_TYPES), ``depth``
        (flat length after the edge) and signed ``height``, each ``(2K,)``: climb 1, jump-down 1, climb 2..."""
        x0, h, gap = track["box_x0"], track["box_h"], track["gap"]
        k = self.num_boxes

        def interleave(a, b):
            return jnp.stack([a, b], axis=-1).reshape(2 * k)

        return {
            "x": interleave(x0, x0 + self.length),
            "type": interleave(jnp.full(k, CLIMB), jnp.full(k, JUMP_DOWN)),
            "depth": interleave(jnp.full(k, self.length), gap),
            "height": interleave(h, -h),
        }

    def goal_x(self, track: dict) -> jax.Array:
        """The track is finished once the base passes this x: the last jump-down edge plus ``goal_margin``."""
        return track["box_x0"][-1] + self.length + float(self.cfg["goal_margin"])

    def engaging_block(self, track: dict, base_x: jax.Array) -> jax.Array:
        """``(6,)`` :mod:`legged_env.terrain.engaging_block` segment for a base at ``base_x``.

        The engaged edge is the first one the base is not yet ``pass_margin`` beyond, so the distance
        goes negative once the robot is on it; past the last edge the type is ``none`` (zeros elsewhere).
        """
        e = self.edges(track)
        ahead = e["x"] + float(self.cfg["pass_margin"]) > base_x
        idx = jnp.argmax(ahead)
        any_ahead = jnp.any(ahead)
        kind = jnp.where(any_ahead, e["type"][idx], NONE)
        one_hot = jax.nn.one_hot(kind, len(OBSTACLE_TYPES))
        z = jnp.where(any_ahead, jnp.stack([e["x"][idx] - base_x, e["depth"][idx], e["height"][idx]]), 0.0)
        return jnp.concatenate([z[:1], one_hot, z[1:]])

    def cleared(self, track: dict, max_x: jax.Array) -> jax.Array:
        """``()`` number of edges the base got ``pass_margin`` beyond (``max_x``: furthest base x so far)."""
        return jnp.sum(self.edges(track)["x"] + float(self.cfg["pass_margin"]) <= max_x)


def terrain_height(boxes: jax.Array, xy: jax.Array) -> jax.Array:
    """Ground height (m) under points ``xy (..., 2)`` on the floor (z = 0) with ``boxes (B, 6)``: ``(...)``."""
    x, y = xy[..., None, 0], xy[..., None, 1]
    inside = (x >= boxes[:, 0]) & (x <= boxes[:, 3]) & (y >= boxes[:, 1]) & (y <= boxes[:, 4])
    return jnp.maximum(jnp.max(jnp.where(inside, boxes[:, 5], 0.0), axis=-1), 0.0)


def scan_points(x_range, y_range, num_x: int, num_y: int) -> jax.Array:
    """``(num_x, num_y, 2)`` grid of scan points in the yaw-aligned base frame (x forward, y left)."""
    xs = jnp.linspace(x_range[0], x_range[1], num_x)
    ys = jnp.linspace(y_range[0], y_range[1], num_y)
    return jnp.stack(jnp.meshgrid(xs, ys, indexing="ij"), axis=-1)


def height_scan(boxes: jax.Array, points: jax.Array, base_pos: jax.Array, yaw: jax.Array, clip: float) -> jax.Array:
    """Terrain height minus base height at ``points (X, Y, 2)`` rotated by the base yaw, clipped: ``(1, X, Y)``."""
    c, s = jnp.cos(yaw), jnp.sin(yaw)
    rot = jnp.array([[c, -s], [s, c]])
    world = base_pos[:2] + points @ rot.T
    return jnp.clip(terrain_height(boxes, world) - base_pos[2], -clip, clip)[None]

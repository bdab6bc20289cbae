"""Walk: track velocity commands (vx, vy, yaw rate) on flat ground."""

import jax
import jax.numpy as jnp
import numpy as np

from legged_env.core import contacts, sensors, symmetry
from legged_env.core.legged_env import LeggedEnv
from legged_env.core.math import quat_rotate_inverse
from legged_env.errors import ConfigError
from legged_env.robots.go1 import symmetry as go1_symmetry
from legged_env.robots.go1.kinematics import load_kinematics
from legged_env.tasks.walk.rewards import REWARDS

_CONTACT_GROUPS = ("trunk", "hip", "thigh", "calf")


class WalkTask(LeggedEnv):
    """Velocity-command tracking. Observable quantities are listed in :meth:`quantity_shapes`."""

    reward_functions = REWARDS
    # what the IMU and the joint encoders give: late by env.proprio_latency_steps in the actor's observation
    DELAYED_QUANTITIES = ("base_lin_vel", "base_ang_vel", "projected_gravity", "dof_pos", "dof_vel")

    def __init__(self, cfg: dict, num_envs: int, seed: int = 0, source: str = "<config>"):
        bad = sorted(set(cfg["terminations"]["contact_geoms"]) - set(_CONTACT_GROUPS))
        if bad:
            raise ConfigError(
                f"env.terminations.contact_geoms in {source}: unknown group '{bad[0]}' "
                f"(valid: {', '.join(_CONTACT_GROUPS)})"
            )
        frac = cfg["commands"].get("turn_in_place_fraction", 0.0)  # climb's commands are forward only
        if not 0.0 <= frac <= 1.0:
            raise ConfigError(f"env.commands.turn_in_place_fraction in {source}: {frac} is not in [0, 1]")
        where = f"env.proprio_latency_steps in {source}"
        self.proprio_latency = sensors.value_range(cfg["proprio_latency_steps"], where, True, 0)
        super().__init__(cfg, num_envs, seed, source)
        shapes = self.quantity_shapes()
        self.delayed_shapes = {n: shapes[n] for n in self.DELAYED_QUANTITIES}
        self.delayed_size = sum(int(np.prod(s)) for s in self.delayed_shapes.values())
        self.kinematics = load_kinematics(self.robot.XML_PATH)
        m = self.mj_model
        self.foot_radius = jnp.array(m.geom_size[self.foot_geoms, 0])
        leg = jnp.concatenate([jnp.array(self.thigh_geoms), jnp.array(self.calf_geoms)])
        self.leg_geoms = leg
        self.leg_radius = jnp.array(m.geom_size[leg, 0])
        self.leg_half_len = jnp.array(m.geom_size[leg, 1])
        self.trunk_half_size = jnp.array(m.geom_size[self.trunk_geom])
        mid = (self.joint_range[:, 0] + self.joint_range[:, 1]) / 2
        half = (self.joint_range[:, 1] - self.joint_range[:, 0]) / 2 * cfg["rewards"]["soft_dof_pos_limit"]
        self.soft_joint_range = jnp.stack([mid - half, mid + half], axis=1)
        self.resample_steps = max(int(round(cfg["commands"]["resampling_time_s"] / self.dt)), 1)
        # Lookup tables over geom ids for the physics' contact rows: each row is a robot geom against a terrain
        # geom (robot geoms have no conaffinity bit), and the robot geom names what touches the terrain.
        self.terrain_geom_mask = jnp.asarray(np.isin(np.arange(m.ngeom), self.terrain_geoms))
        group_of = np.full(m.ngeom, -1)
        for code, g in enumerate(_CONTACT_GROUPS):
            group_of[self.contact_group_geoms[g]] = code
        self.geom_contact_group = jnp.asarray(group_of)  # -1: a foot or a terrain geom
        leg_of = np.full(m.ngeom, -1)
        leg_of[np.asarray(leg)] = np.arange(len(leg))
        self.geom_leg_index = jnp.asarray(leg_of)  # thighs 0-3, calves 4-7, else -1

    def quantity_shapes(self) -> dict[str, tuple[int, ...]]:
        n = self.num_actions
        return {
            "base_lin_vel": (3,),
            "base_ang_vel": (3,),
            "projected_gravity": (3,),
            "commands": (3,),
            "dof_pos": (n,),
            "dof_vel": (n,),
            "last_actions": (n,),
            "friction": (1,),
            "added_mass": (1,),
            "com_offset": (3,),
            "motor_strength": (n,),
            "foot_contacts": (4,),
            "base_height": (1,),
            "foot_pos": (12,),
        }

    # ------------------------------------------------------------------ symmetry
    def quantity_mirrors(self) -> dict:
        """Left-right mirror of every quantity of :meth:`quantity_shapes` (base-frame vectors: y -> -y)."""
        joints = go1_symmetry.joints()
        return {
            "base_lin_vel": symmetry.signs(symmetry.POLAR),
            "base_ang_vel": symmetry.signs(symmetry.AXIAL),
            "projected_gravity": symmetry.signs(symmetry.POLAR),
            "commands": symmetry.signs((1.0, -1.0, -1.0)),  # vx, vy, yaw rate
            "dof_pos": joints,  # offsets from a symmetric default pose
            "dof_vel": joints,
            "last_actions": joints,
            "friction": symmetry.identity(1),
            "added_mass": symmetry.identity(1),
            "com_offset": symmetry.signs(symmetry.POLAR),
            "motor_strength": go1_symmetry.joint_params(),
            "foot_contacts": go1_symmetry.legs(),
            "base_height": symmetry.identity(1),
            "foot_pos": go1_symmetry.leg_vectors(),
        }

    def action_mirror(self) -> symmetry.Mirror:
        try:
            go1_symmetry.check_default_pose()
        except ValueError as e:
            raise ConfigError(str(e)) from None
        return go1_symmetry.joints()

    # ------------------------------------------------------------------ commands
    def _sample_commands(self, rng: jax.Array) -> jax.Array:
        c = self.cfg["commands"]
        lo = jnp.array([c["lin_vel_x"][0], c["lin_vel_y"][0], c["ang_vel_yaw"][0]])
        hi = jnp.array([c["lin_vel_x"][1], c["lin_vel_y"][1], c["ang_vel_yaw"][1]])
        rng_cmd, rng_turn = jax.random.split(rng)
        cmd = jax.random.uniform(rng_cmd, (3,), minval=lo, maxval=hi)
        # Tiny planar commands become exact zeros so the policy also learns to stand still, and a fraction of the
        # commands are turning in place (vx = vy = 0, the yaw rate as drawn): the uniform draw alone gives ~6%.
        small = jnp.linalg.norm(cmd[:2]) < c["zero_below"]
        in_place = small | (jax.random.uniform(rng_turn) < c["turn_in_place_fraction"])
        return cmd.at[:2].set(jnp.where(in_place, 0.0, cmd[:2]))

    def reset_task_info(self, rng: jax.Array, info: dict) -> dict:
        out = {
            "commands": self._sample_commands(rng),
            "feet_air_time": jnp.zeros(4),
            "last_contacts": jnp.zeros(4, dtype=bool),
        }
        lo, hi = self.proprio_latency
        if hi > 0:  # this episode's latency and the last hi + 1 readings, oldest first
            out["proprio_latency"] = jax.random.randint(jax.random.fold_in(rng, 11), (), lo, hi + 1, dtype=jnp.int32)
            out["proprio_buffer"] = jnp.zeros((hi + 1, self.delayed_size), jnp.float32)
        return out

    def _delayed_flat(self, q: dict) -> jax.Array:
        return jnp.concatenate([jnp.ravel(q[n]) for n in self.delayed_shapes]).astype(jnp.float32)

    def actor_quantities(self, q: dict, info: dict) -> dict:
        if self.proprio_latency[1] == 0:
            return q
        flat = sensors.delayed(info["proprio_buffer"], info["proprio_latency"], info["step"], self._delayed_flat(q))
        out, start = dict(q), 0
        for name, shape in self.delayed_shapes.items():
            size = int(np.prod(shape))
            out[name] = flat[start : start + size].reshape(shape)
            start += size
        return out

    # ------------------------------------------------------------------ quantities
    def obs_quantities(self, qpos, qvel, info: dict, foot_contacts) -> dict:
        quat = qpos[3:7]
        return {
            "base_lin_vel": quat_rotate_inverse(quat, qvel[:3]),
            "base_ang_vel": qvel[3:6],  # a free joint's angular velocity is already in the body frame
            "projected_gravity": quat_rotate_inverse(quat, jnp.array([0.0, 0.0, -1.0])),
            "commands": info["commands"],
            "dof_pos": qpos[self.qpos_idx] - self.default_joint_pos,
            "dof_vel": qvel[self.qvel_idx],
            "last_actions": info["last_actions"],
            "friction": info["friction"],
            "added_mass": info["added_mass"],
            "com_offset": info["com_offset"],
            "motor_strength": info["motor_strength"],
            "foot_contacts": foot_contacts.astype(jnp.float32),
            "base_height": qpos[2:3],
            # foot centres (FL, FR, RL, RR) x (x, y, z) in the base frame, by the leg kinematics of the MJCF
            "foot_pos": self.kinematics.fk(qpos[self.qpos_idx], jnp).reshape(12),
        }

    def ground_function(self, info: dict):
        """``xy (..., 2) -> z (...)``: the ground this env's robot touches (flat here; terrains override)."""
        return contacts.flat_ground

    def quantities(self, data, info: dict, action, tau, power) -> dict:
        ground = self.ground_function(info)
        feet = contacts.sphere_clearance(data.geom_xpos[self.foot_geoms], self.foot_radius, ground)
        foot_contacts = feet < 0.005
        # Body contacts are the physics' own (penetrating contact rows of the last substep).
        con = data._impl.contact
        robot = jnp.where(self.terrain_geom_mask[con.geom[:, 0]], con.geom[:, 1], con.geom[:, 0])
        touching = con.dist < 0.0
        depth = jnp.where(touching, -con.dist, 0.0)
        group = self.geom_contact_group[robot]
        body = group >= 0
        leg_rows = self.geom_leg_index[robot][None, :] == jnp.arange(len(self.leg_geoms))[:, None]
        # legged_gym's air-time rule: a contact counts if seen in this or the last step (MJX contacts flicker).
        contact_filt = foot_contacts | info["last_contacts"]
        first_contact = (info["feet_air_time"] > 0.0) & contact_filt
        air_time = info["feet_air_time"] + self.dt
        q = self.obs_quantities(data.qpos, data.qvel, info, foot_contacts)
        q.update(
            actions=action,
            torques=tau,
            power=power,
            dt=self.dt,
            last_dof_vel=info["last_dof_vel"],
            joint_pos=data.qpos[self.qpos_idx],
            soft_joint_range=self.soft_joint_range,
            feet_air_time=air_time,
            feet_first_contact=first_contact,
            feet_contact_filt=contact_filt,
            leg_contacts=jnp.any(leg_rows & touching, axis=1),
            body_contact_count=jnp.sum(body & touching),
            body_penetration=jnp.max(jnp.where(body, depth, 0.0)),
            max_penetration=jnp.max(depth),
            **{f"{g}_contact": jnp.any((group == k) & touching) for k, g in enumerate(_CONTACT_GROUPS)},
        )
        return q

    def terminated(self, q: dict) -> jax.Array:
        groups = self.cfg["terminations"]["contact_geoms"]
        hit = jnp.zeros((), dtype=bool)
        for g in groups:
            hit = hit | q[f"{g}_contact"]
        # Tilt angle from vertical: acos(-g_z) with g the gravity direction in the base frame.
        tilted = -q["projected_gravity"][2] < jnp.cos(self.cfg["terminations"]["max_tilt"])
        return hit | tilted

    def update_task_info(self, info: dict, q: dict) -> dict:
        rng, key = jax.random.split(info["rng"])
        resample = info["step"] % self.resample_steps == 0
        commands = jnp.where(resample, self._sample_commands(key), info["commands"])
        out = {
            **info,
            "rng": rng,
            "commands": commands,
            "feet_air_time": q["feet_air_time"] * ~q["feet_contact_filt"],
            "last_contacts": q["foot_contacts"] > 0.5,
        }
        if self.proprio_latency[1] > 0:
            out["proprio_buffer"] = jnp.concatenate([info["proprio_buffer"][1:], self._delayed_flat(q)[None]])
        return out

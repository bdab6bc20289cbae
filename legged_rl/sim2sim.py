"""Sim-to-sim: run an exported policy in plain MuJoCo (no JAX, no st_rl), as the robot would run it.

Two physics (``MujocoDeployment(physics=...)``):

- ``referee`` (the default): plain MuJoCo C with MuJoCo's default solver (Newton, 100 iterations, 50 line-search
  iterations, eulerdamp on; the robot MJCF's training settings are undone) and every geom colliding with every
  other (contype = conaffinity = 1, condim 3; MuJoCo still skips pairs within a body and parent-child pairs), every
  contact with the terrain's friction (robot geoms get it too: MuJoCo takes the larger of a pair), and, for climb,
  every obstacle and both side walls as real boxes.
- ``training``: the model as the training env builds it: the MJCF's contact bits (no self-collisions), the solver
  iterations of ``env.solver``, the climb task's one colliding box moved onto the obstacle the robot is at, and
  the side walls as planes.

Both use the joints' MJCF damping, frictionloss and armature (the nominal, published values; clipped into the run's
``env.domain_rand`` ranges should those exclude them), motor strength 1, no added mass, no pushes.

The climb track (``legged_env/terrain/tracks.py``) is rebuilt in numpy from ``policy.json["env"]`` (that module
imports JAX) by ``legged_rl/sim2sim_track.py``: same sampling rules, same geometry, same observation formulas
(``engaging_block``, ``height_scan``, ``wall_distance``, ``base_rpy``), checked against the env by
``tests/legged_env/test_sim2sim*.py``; climb episodes run in ``legged_rl/sim2sim_climb.py``.
A ``forward_depth`` image comes from MuJoCo's own renderer (``legged_rl/sim2sim_sensors.py``: a camera on the trunk,
the terrain only, the run's camera model), and ``env.proprio_latency_steps`` delays the IMU and joint readings.
"""

import json
import math
import os

import mujoco
import numpy as np

from legged_env.robots import get_robot
from legged_rl.sim2sim_sensors import (
    DELAYED_SEGMENTS,
    TERRAIN_GROUP,
    CameraModel,
    Delayed,
    DepthRenderer,
    add_depth_camera,
    camera_is_ideal,
    camera_ranges,
    half_up,
    sample_camera,
    value_range,
)
from legged_rl.sim2sim_track import BOX_PREFIX, COLLIDER, Track, height_scan, quat_to_rpy, scan_points

POLICY_FILES = ("policy.pt", "policy.onnx")
PHYSICS = ("referee", "training")
WALK_SEGMENTS = ("base_lin_vel", "base_ang_vel", "projected_gravity", "commands", "dof_pos", "dof_vel", "last_actions")
CLIMB_SEGMENTS = ("base_rpy", "wall_distance", "engaging_block", "height_scan", "forward_depth")
CONTACT_GROUPS = ("trunk", "hip", "thigh", "calf", "foot")  # trunk: trunk and head geoms


class TorchScriptPolicy:
    """``policy.pt`` with :class:`st_rl.utils.onnx_policy.OnnxPolicy`'s numpy calling convention."""

    def __init__(self, path: str):
        import torch  # only for this file type: an ONNX deployment needs onnxruntime alone

        self._torch = torch
        self.module = torch.jit.load(path)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            return self.module(self._torch.as_tensor(obs, dtype=self._torch.float32)).numpy()

    def reset(self, dones=None) -> None:
        if hasattr(self.module, "reset"):  # recurrent state (exports before recurrent support have no reset)
            self.module.reset()


def load_exported_policy(path: str):
    """A callable ``(B, num_obs) float32 -> (B, num_actions)`` with ``reset()``, from policy.pt or policy.onnx."""
    if path.endswith(".onnx"):
        from st_rl.utils.onnx_policy import OnnxPolicy  # numpy + onnxruntime only

        return OnnxPolicy(path)
    return TorchScriptPolicy(path)


# ---------------------------------------------------------------------------------------------------- deployment
class MujocoDeployment:
    """Runs an exported policy (``policy.pt`` or ``policy.onnx`` + ``policy.json``) in plain MuJoCo, as a robot would.

    No JAX and no st_rl: the observation is built with numpy from ``MjData`` (and, for climb, the track) following
    ``policy.json``, and torques come from the PD law it states, at ``sim_dt`` for ``decimation`` substeps per
    policy step.

    Args:
        export_dir: directory with ``policy.json`` and the exported policy.
        xml_path: MJCF of the robot (default: the robot named in policy.json).
        policy_file: ``policy.pt`` (TorchScript, run with torch) or ``policy.onnx`` (run with onnxruntime).
        physics: ``referee`` (MuJoCo's defaults, every geom colliding) or ``training`` (the training model).
        env_cfg: the run's resolved ``env`` section (default: ``policy.json["env"]``; exports before it had one
            need it for climb).
        friction: sliding friction of every contact in the referee (default: the MJCF floor's).
        perturbed: as play.py's ``--perturbed``: the actor's observation noise (``env.observations.actor``
            noise x ``env.noise.level``, uniform) and velocity pushes (``env.domain_rand.push_interval_s``,
            ``push_vel_xy``), drawn from ``seed``; the depth camera's model and the proprioception latency drawn per
            episode from their ranges (nominal: the middle of each range).
        seed: the perturbations' and the depth camera's random numbers.
    """

    def __init__(
        self,
        export_dir: str,
        xml_path: str | None = None,
        policy_file: str = "policy.pt",
        physics: str = "referee",
        env_cfg: dict | None = None,
        friction: float | None = None,
        perturbed: bool = False,
        seed: int = 0,
    ):
        with open(os.path.join(export_dir, "policy.json")) as f:
            self.meta = json.load(f)
        if physics not in PHYSICS:
            raise ValueError(f"physics must be one of {', '.join(PHYSICS)}, got {physics!r}")
        self.physics = physics
        self.env_cfg = env_cfg if env_cfg is not None else self.meta.get("env", {})
        self.task = self.meta.get("task", "walk")
        names = [s["name"] for s in self.meta["obs_segments"]]
        climb = "terrain" in self.env_cfg
        if self.task == "climb" and not climb:
            raise ValueError("policy.json has no env section to rebuild the climb track from: export the run again")
        supported = WALK_SEGMENTS + (CLIMB_SEGMENTS if climb else ())
        unsupported = [n for n in names if n not in supported]
        if unsupported:
            raise ValueError(f"segments {unsupported} need sensors this deployment does not model")
        if policy_file not in POLICY_FILES:
            raise ValueError(f"policy file must be one of {', '.join(POLICY_FILES)}, got {policy_file!r}")
        path = os.path.join(export_dir, policy_file)
        if not os.path.isfile(path):
            raise ValueError(f"no {policy_file} in {export_dir} (exports before ONNX support have only policy.pt)")
        self.uses_depth = "forward_depth" in names
        if self.uses_depth:
            self._check_depth_segment()
        self.policy = load_exported_policy(path)
        self.robot = get_robot(self.meta["robot"])
        self.track_spec = Track(self.env_cfg["terrain"]) if climb else None
        self.model = self._build_model(xml_path or str(self.robot.XML_PATH), friction)
        # The boxes move per episode (and the training physics' collider per step) after compiling: MuJoCo's
        # midphase culls with bounding-volume trees of the world body built at compile time, and so misses
        # contacts with a moved static geom (a foot inside a placed box went undetected). Without it the
        # broad phase checks every candidate pair with the geoms' current poses; the physics is the same.
        self.model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_MIDPHASE)
        self.data = mujoco.MjData(self.model)
        m = self.model
        jids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n) for n in self.meta["joint_names"]]
        self.qpos_idx = np.array([m.jnt_qposadr[j] for j in jids])
        self.qvel_idx = np.array([m.jnt_dofadr[j] for j in jids])
        self.default = np.array(self.meta["default_joint_pos"])
        self.kp, self.kd = np.array(self.meta["kp"]), np.array(self.meta["kd"])
        self.limits = np.array(self.meta["torque_limits"])
        self.last_actions = np.zeros(self.meta["num_actions"])
        self.commands = np.zeros(3)
        self.perturbed, self.rng, self.steps = perturbed, np.random.default_rng(seed), 0
        noise, actor = self.env_cfg.get("noise", {}), self.env_cfg.get("observations", {}).get("actor", {})
        level = float(noise.get("level", 0.0)) if noise.get("enabled", False) else 0.0
        self.obs_noise = np.concatenate(
            [
                np.asarray(s["scale"], np.float64) * float((actor.get(s["name"]) or {}).get("noise", 0.0)) * level
                for s in self.meta["obs_segments"]
            ]
        )
        # Contact bookkeeping: terrain = colliding world-body geoms; robot geoms by contact group (-1: none).
        self.is_terrain = (m.geom_bodyid == 0) & (m.geom_conaffinity != 0)
        self.geom_group = np.full(m.ngeom, -1)
        r = self.robot
        groups = ((r.TRUNK_GEOM, *r.HEAD_GEOMS), r.HIP_GEOMS, r.THIGH_GEOMS, r.CALF_GEOMS, r.FOOT_GEOMS)
        for code, geoms in enumerate(groups):
            for g in geoms:
                self.geom_group[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, g)] = code
        if climb:
            hs = self.env_cfg["height_scan"]
            self.scan_points = scan_points(hs["x_range"], hs["y_range"], hs["num_x"], hs["num_y"])
            gid = [
                mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"{BOX_PREFIX}{k}")
                for k in range(self.track_spec.num_boxes)
            ]
            self.box_geoms = np.array(gid)
            self.collider_geom = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, COLLIDER)  # -1 in the referee
            self.set_track(self.track_spec.sample(np.random.default_rng(0), 0))
        self._init_sensors(names, seed)

    def _check_depth_segment(self) -> None:
        fd = self.env_cfg["forward_depth"]
        shape = next(s["shape"] for s in self.meta["obs_segments"] if s["name"] == "forward_depth")
        if list(shape) != [1, *fd["resolution"]]:
            raise ValueError(
                f"segment forward_depth has shape {list(shape)} but env.forward_depth.resolution is "
                f"{list(fd['resolution'])}: the image would not be the policy's"
            )

    def _init_sensors(self, names: list[str], seed: int) -> None:
        """The depth renderer and camera model, the proprioception latency (legged_rl/sim2sim_sensors.py)."""
        self.sensor_rng = np.random.default_rng([seed, 1])  # apart from self.rng: perturbed draws stay as they were
        self.proprio_range = value_range(self.env_cfg.get("proprio_latency_steps", [0, 0]), True)
        self.delayed_names = [n for n in DELAYED_SEGMENTS if n in names]
        self.depth_pipeline = False
        if self.uses_depth:
            fd = self.env_cfg["forward_depth"]
            self.depth_renderer = DepthRenderer(self.model, fd)
            self.camera_ranges = camera_ranges(fd)
            self.depth_pipeline = not camera_is_ideal(self.camera_ranges, float(fd["max_range"]))
        self._reset_sensors()

    def _reset_sensors(self) -> None:
        """A new episode's sensors: nominal, or drawn from their ranges when perturbed."""
        rng = self.sensor_rng if self.perturbed else None
        lo, hi = self.proprio_range
        self.proprio = Delayed(half_up((lo + hi) / 2) if rng is None else int(rng.integers(lo, hi + 1)))
        if self.depth_pipeline:
            fd = self.env_cfg["forward_depth"]
            cam = sample_camera(self.camera_ranges, rng)
            self.camera = CameraModel(cam, tuple(fd["resolution"]), fd["max_range"], self.sensor_rng)

    def render_depth(self) -> np.ndarray:
        """``(H, W)`` clean z-depth image [m] of the trunk camera at the current pose (no camera model)."""
        mujoco.mj_kinematics(self.model, self.data)  # after mj_step the poses are those before its integration
        mujoco.mj_camlight(self.model, self.data)
        return self.depth_renderer.render(self.data)

    def _sense(self) -> None:
        """After policy step ``s`` (physics and pushes done): record the delayed readings and the camera's image."""
        if self.proprio.latency > 0:
            rot = quat_to_mat(self.data.qpos[3:7])
            self.proprio.push({n: np.array(self.quantity(n, rot), dtype=np.float64) for n in self.delayed_names})
        if self.depth_pipeline:
            self.camera.step(self.render_depth())

    def _build_model(self, xml_path: str, friction: float | None) -> mujoco.MjModel:
        if self.track_spec is None:
            spec = mujoco.MjSpec.from_file(xml_path)
        else:
            with open(xml_path) as f:
                xml = f.read()
            if "</worldbody>" not in xml:
                raise ValueError(f"{xml_path} has no </worldbody> to add the track to")
            geoms = self.track_spec.mjcf_geoms(self.physics)
            spec = mujoco.MjSpec.from_string(xml.replace("</worldbody>", geoms + "\n</worldbody>", 1))
        if self.physics == "referee":
            # Contact bits on the spec, so the compiler derives the per-body bits its broad phase filters with.
            terrain = np.array(next(g for g in spec.geoms if g.name == "floor").friction, dtype=np.float64)
            if friction is not None:
                terrain[0] = friction
            for g in spec.geoms:
                g.contype, g.conaffinity, g.condim, g.friction = 1, 1, 3, terrain
        if self.uses_depth:
            self._add_depth_camera(spec)
        model = spec.compile()
        model.opt.timestep = self.meta["sim_dt"]
        solver = self.env_cfg.get("solver")
        if self.physics == "training" and solver:
            model.opt.iterations = int(solver["iterations"])
            model.opt.ls_iterations = int(solver["ls_iterations"])
        if self.physics == "referee":
            default = mujoco.MjModel.from_xml_string("<mujoco/>").opt
            for key in (
                "solver",
                "iterations",
                "ls_iterations",
                "tolerance",
                "ls_tolerance",
                "noslip_iterations",
                "cone",
            ):
                setattr(model.opt, key, getattr(default, key))
            model.opt.disableflags &= ~int(mujoco.mjtDisableBit.mjDSBL_EULERDAMP)
        dr = self.env_cfg.get("domain_rand", {})
        jids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in self.meta["joint_names"]]
        dofs = np.array([model.jnt_dofadr[j] for j in jids])
        for name in ("damping", "frictionloss", "armature"):
            lo, hi = dr.get(f"joint_{name}", (1.0, 1.0))
            field = getattr(model, f"dof_{name}")
            field[dofs] *= min(max(1.0, lo), hi)  # the MJCF's value, inside the run's randomisation range
        return model

    def _add_depth_camera(self, spec: mujoco.MjSpec) -> None:
        """The trunk camera, and the floor in the track's geom group: the renderer draws that group alone, the
        terrain the env's ray caster sees (a visual attribute: the physics is unchanged)."""
        spec.geom("floor").group = TERRAIN_GROUP
        for g in spec.body(self.robot.TRUNK_BODY).find_all("geom"):  # the whole robot
            if g.group == TERRAIN_GROUP:
                raise ValueError(f"robot geom {g.name!r} is in geom group {TERRAIN_GROUP}, the terrain's")
        add_depth_camera(spec, self.robot.TRUNK_BODY, self.env_cfg["forward_depth"])

    # ------------------------------------------------------------------ episode setup
    def set_track(self, track: dict) -> None:
        """Puts the robot on ``track`` (``box_x0``, ``box_h``, ``gap``; e.g. an env's ``state.info["track"][i]``)."""
        self.track = {k: np.asarray(track[k], dtype=np.float64) for k in ("box_x0", "box_h", "gap")}
        self.model.geom_pos[self.box_geoms] = self.track_spec.geom_pos(self.track)
        self._place_collider()

    def _place_collider(self) -> None:
        if self.collider_geom >= 0:
            self.model.geom_pos[self.collider_geom] = self.track_spec.collider_pos(self.track, self.data.qpos[0])

    def reset(self, base_height: float | None = None, yaw: float = 0.0, track: dict | None = None) -> None:
        """Robot in the default pose at rest, ``base_height`` (default: ``env.init_state.base_height``) above the
        floor, heading ``yaw``; the policy's recurrent state reset; climb: on ``track`` if given."""
        if base_height is None:
            base_height = self.env_cfg.get("init_state", {}).get("base_height", 0.34)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[2] = base_height
        self.data.qpos[3:7] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        self.data.qpos[self.qpos_idx] = self.default
        self.last_actions[:] = 0.0
        self.steps = 0
        self.policy.reset()
        if track is not None:
            self.set_track(track)
        mujoco.mj_forward(self.model, self.data)
        self._reset_sensors()

    # ------------------------------------------------------------------ observation
    def quantity(self, name: str, rot: np.ndarray | None = None) -> np.ndarray:
        """The unscaled value of observation segment ``name`` at the current state."""
        d = self.data
        rot = quat_to_mat(d.qpos[3:7]) if rot is None else rot
        if name == "base_lin_vel":
            return rot.T @ d.qvel[:3]
        if name == "base_ang_vel":
            return d.qvel[3:6]  # a free joint's angular velocity is in the body frame
        if name == "projected_gravity":
            return rot.T @ np.array([0.0, 0.0, -1.0])
        if name == "commands":
            return self.commands
        if name == "dof_pos":
            return d.qpos[self.qpos_idx] - self.default
        if name == "dof_vel":
            return d.qvel[self.qvel_idx]
        if name == "last_actions":
            return self.last_actions
        if name == "base_rpy":
            return quat_to_rpy(d.qpos[3:7])
        if name == "wall_distance":
            half = self.track_spec.width / 2
            return np.array([half - d.qpos[1], half + d.qpos[1]])
        if name == "engaging_block":
            return self.track_spec.engaging_block(self.track, d.qpos[0])
        if name == "height_scan":
            yaw = math.atan2(rot[1, 0], rot[0, 0])  # heading of the base x axis
            clip = self.env_cfg["height_scan"]["clip"]
            return height_scan(self.track_spec.boxes(self.track), self.scan_points, d.qpos[:3], yaw, clip)
        if name == "forward_depth":  # the camera model's held frame, or an ideal camera's image of this pose
            return (self.camera.frame if self.depth_pipeline else self.render_depth())[None]
        raise KeyError(name)

    def observation(self) -> np.ndarray:
        """Flat actor observation ``(num_obs,)`` in policy.json's segment order and scales: the sensors' readings
        (late by the proprioception latency, the camera model's frame)."""
        rot = quat_to_mat(self.data.qpos[3:7])
        late = self.proprio.read() or {}
        obs = np.concatenate(
            [
                np.ravel(late[s["name"]] if s["name"] in late else self.quantity(s["name"], rot)) * np.array(s["scale"])
                for s in self.meta["obs_segments"]
            ]
        )
        if self.perturbed:
            obs = obs + self.rng.uniform(-1.0, 1.0, obs.shape) * self.obs_noise
        return obs

    # ------------------------------------------------------------------ stepping
    def terrain_contacts(self) -> tuple[np.ndarray, float, float]:
        """Robot-terrain contacts now: ``(touching (5,) bool per CONTACT_GROUPS, deepest non-foot penetration,
        deepest penetration)`` (m; 0 without contact)."""
        n = self.data.ncon
        touching = np.zeros(len(CONTACT_GROUPS), dtype=bool)
        if n == 0:
            return touching, 0.0, 0.0
        geom, dist = self.data.contact.geom[:n], self.data.contact.dist[:n]
        terrain = self.is_terrain[geom]
        pair = terrain[:, 0] != terrain[:, 1]
        robot = np.where(terrain[:, 0], geom[:, 1], geom[:, 0])
        group = self.geom_group[robot]
        hit = pair & (dist < 0) & (group >= 0)
        if not hit.any():
            return touching, 0.0, 0.0
        touching[np.unique(group[hit])] = True
        depth = -dist[hit]
        body = group[hit] != CONTACT_GROUPS.index("foot")
        return touching, float(depth[body].max()) if body.any() else 0.0, float(depth.max())

    def step(self) -> dict:
        """One policy step: observe, act, ``decimation`` PD-controlled physics substeps. Returns the robot-terrain
        contacts seen in any substep: ``touching`` (per CONTACT_GROUPS), ``body_penetration`` and ``penetration``
        (deepest, m)."""
        action = np.asarray(self.policy(self.observation()[None].astype(np.float32))[0], dtype=np.float64)
        clip = self.meta["clip_actions"]
        action = np.clip(action, -clip, clip)
        target = self.default + self.meta["action_scale"] * action
        if self.track_spec is not None:
            self._place_collider()  # training physics: the collider follows the robot, once per policy step
        touching, body_pen, pen = np.zeros(len(CONTACT_GROUPS), dtype=bool), 0.0, 0.0
        for _ in range(self.meta["decimation"]):
            q, qd = self.data.qpos[self.qpos_idx], self.data.qvel[self.qvel_idx]
            self.data.ctrl[:] = np.clip(self.kp * (target - q) - self.kd * qd, -self.limits, self.limits)
            mujoco.mj_step(self.model, self.data)
            t, b, p = self.terrain_contacts()
            touching |= t
            body_pen, pen = max(body_pen, b), max(pen, p)
        self.last_actions = action
        self.steps += 1
        dr = self.env_cfg.get("domain_rand", {})
        if self.perturbed and dr.get("push_vel_xy", 0.0) > 0:  # the env's pushes: every push_interval_s
            interval = max(int(round(dr["push_interval_s"] / self.meta["control_dt"])), 1)
            if self.steps % interval == 0:
                self.data.qvel[:2] += self.rng.uniform(-1.0, 1.0, 2) * dr["push_vel_xy"]
        self._sense()
        return {"touching": touching, "body_penetration": body_pen, "penetration": pen}


def quat_to_mat(quat) -> np.ndarray:
    """(3, 3) rotation matrix of a unit quaternion (w, x, y, z)."""
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, np.asarray(quat, dtype=np.float64))
    return mat.reshape(3, 3)


def touches(contacts: dict, groups) -> bool:
    return any(contacts["touching"][CONTACT_GROUPS.index(g)] for g in groups)


NON_FOOT = ("trunk", "hip", "thigh", "calf")


# ---------------------------------------------------------------------------------------------------- walk
def run_command(
    deployment: MujocoDeployment, command: tuple[float, float, float], seconds: float, settle_s: float = 1.0
):
    """Follows ``command`` (vx, vy, yaw rate) for ``seconds``; returns mean base-frame velocities after ``settle_s``,
    whether the robot fell (the walk terminations of ``env.terminations``: tilt over ``max_tilt`` (default 1 rad),
    a ``contact_geoms`` group (default trunk and head) touching the floor), the number of policy steps with a
    non-foot robot geom touching the terrain and the deepest penetrations (m)."""
    deployment.reset()
    deployment.commands = np.asarray(command, dtype=np.float64)
    term = deployment.env_cfg.get("terminations", {})
    max_tilt, groups = float(term.get("max_tilt", 1.0)), term.get("contact_geoms", ["trunk"])
    dt = deployment.meta["control_dt"]
    vels, fell, steps, non_foot, body_pen, pen = [], False, 0, 0, 0.0, 0.0
    for i in range(int(round(seconds / dt))):
        contacts = deployment.step()
        steps += 1
        non_foot += touches(contacts, NON_FOOT)
        body_pen, pen = max(body_pen, contacts["body_penetration"]), max(pen, contacts["penetration"])
        d = deployment.data
        rot = quat_to_mat(d.qpos[3:7])
        if rot[2, 2] < math.cos(max_tilt) or touches(contacts, groups):
            fell = True
            break
        if i * dt >= settle_s:
            vels.append(np.concatenate([rot.T @ d.qvel[:3], d.qvel[3:6]]))
    v = np.mean(vels, axis=0) if vels else np.full(6, np.nan)
    return {
        "command": list(command),
        "lin_vel_x": float(v[0]),
        "lin_vel_y": float(v[1]),
        "yaw_rate": float(v[5]),
        "fell": fell,
        "steps": steps,
        "non_foot_contacts": non_foot,
        "non_foot_contact_steps_fraction": non_foot / max(steps, 1),
        "max_body_penetration_m": body_pen,
        "max_penetration_m": pen,
    }

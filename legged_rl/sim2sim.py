"""Sim-to-sim: run an exported policy in plain MuJoCo (no JAX, no st_rl), as the robot would run it."""

import json
import os

import mujoco
import numpy as np

from legged_env.robots import get_robot

POLICY_FILES = ("policy.pt", "policy.onnx")


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


class MujocoDeployment:
    """Runs an exported policy (``policy.pt`` + ``policy.json``) in plain MuJoCo, as a robot would.

    No JAX and no st_rl: the observation is built with numpy from ``MjData`` following
    ``policy.json``, and torques come from the PD law it states, at ``sim_dt`` for ``decimation``
    substeps per policy step. This is the sim-to-sim check of an export.

    Args:
        export_dir: directory with ``policy.json`` and the exported policy.
        xml_path: MJCF of the robot (default: the robot named in policy.json).
        policy_file: ``policy.pt`` (TorchScript, run with torch) or ``policy.onnx`` (run with onnxruntime).
    """

    SUPPORTED = ("base_lin_vel", "base_ang_vel", "projected_gravity", "commands", "dof_pos", "dof_vel", "last_actions")

    def __init__(self, export_dir: str, xml_path: str | None = None, policy_file: str = "policy.pt"):
        with open(os.path.join(export_dir, "policy.json")) as f:
            self.meta = json.load(f)
        unsupported = [s["name"] for s in self.meta["obs_segments"] if s["name"] not in self.SUPPORTED]
        if unsupported:
            raise ValueError(f"segments {unsupported} need sensors this deployment does not model")
        if policy_file not in POLICY_FILES:
            raise ValueError(f"policy file must be one of {', '.join(POLICY_FILES)}, got {policy_file!r}")
        path = os.path.join(export_dir, policy_file)
        if not os.path.isfile(path):
            raise ValueError(f"no {policy_file} in {export_dir} (exports before ONNX support have only policy.pt)")
        self.policy = load_exported_policy(path)
        path = xml_path or str(get_robot(self.meta["robot"]).XML_PATH)
        self.model = mujoco.MjModel.from_xml_path(path)
        self.model.opt.timestep = self.meta["sim_dt"]
        self.data = mujoco.MjData(self.model)
        jids = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in self.meta["joint_names"]]
        self.qpos_idx = np.array([self.model.jnt_qposadr[j] for j in jids])
        self.qvel_idx = np.array([self.model.jnt_dofadr[j] for j in jids])
        self.default = np.array(self.meta["default_joint_pos"])
        self.kp, self.kd = np.array(self.meta["kp"]), np.array(self.meta["kd"])
        self.limits = np.array(self.meta["torque_limits"])
        self.last_actions = np.zeros(self.meta["num_actions"])
        self.commands = np.zeros(3)

    def reset(self, base_height: float = 0.34) -> None:
        """Robot in the default pose, ``base_height`` above the floor, at rest."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[2] = base_height
        self.data.qpos[3:7] = (1.0, 0.0, 0.0, 0.0)
        self.data.qpos[self.qpos_idx] = self.default
        self.last_actions[:] = 0.0
        self.policy.reset()
        mujoco.mj_forward(self.model, self.data)

    def observation(self):
        """Flat actor observation ``(num_obs,)`` in policy.json's segment order and scales."""
        d = self.data
        rot = _quat_to_mat(d.qpos[3:7])
        values = {
            "base_lin_vel": rot.T @ d.qvel[:3],
            "base_ang_vel": d.qvel[3:6],
            "projected_gravity": rot.T @ np.array([0.0, 0.0, -1.0]),
            "commands": self.commands,
            "dof_pos": d.qpos[self.qpos_idx] - self.default,
            "dof_vel": d.qvel[self.qvel_idx],
            "last_actions": self.last_actions,
        }
        return np.concatenate([np.ravel(values[s["name"]]) * np.array(s["scale"]) for s in self.meta["obs_segments"]])

    def step(self) -> None:
        """One policy step: observe, act, ``decimation`` PD-controlled physics substeps."""
        action = np.asarray(self.policy(self.observation()[None].astype(np.float32))[0], dtype=np.float64)
        clip = self.meta["clip_actions"]
        action = np.clip(action, -clip, clip)
        target = self.default + self.meta["action_scale"] * action
        for _ in range(self.meta["decimation"]):
            q, qd = self.data.qpos[self.qpos_idx], self.data.qvel[self.qvel_idx]
            self.data.ctrl[:] = np.clip(self.kp * (target - q) - self.kd * qd, -self.limits, self.limits)
            mujoco.mj_step(self.model, self.data)
        self.last_actions = action


def _quat_to_mat(quat) -> np.ndarray:
    """(3, 3) rotation matrix of a unit quaternion (w, x, y, z)."""
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, np.asarray(quat, dtype=np.float64))
    return mat.reshape(3, 3)


def run_command(
    deployment: MujocoDeployment, command: tuple[float, float, float], seconds: float, settle_s: float = 1.0
):
    """Follows ``command`` (vx, vy, yaw rate) for ``seconds``; returns mean base-frame velocities after
    ``settle_s`` and whether the robot fell (tilt over 1 rad or trunk below 0.15 m)."""
    deployment.reset()
    deployment.commands = np.asarray(command, dtype=np.float64)
    dt = deployment.meta["control_dt"]
    vels, fell = [], False
    for i in range(int(round(seconds / dt))):
        deployment.step()
        d = deployment.data
        rot = _quat_to_mat(d.qpos[3:7])
        if rot[2, 2] < np.cos(1.0) or d.qpos[2] < 0.15:
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
    }

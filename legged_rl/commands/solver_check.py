"""Solver check, printed as one JSON object: python scripts/solver_check.py --task=walk.

Chooses the training solver's iterations by measurement, not by speed alone: the robot, held in its
default pose by the task's PD law, is dropped onto the floor from each obstacle height of the climb
curriculum (a jump-down lands like this) and simulated for ``--seconds`` in plain MuJoCo with every
candidate ``iterations`` / ``ls_iterations`` (and the training's other options: Newton, pyramidal cone,
eulerdamp off), and once with MuJoCo's default solver (Newton, 100 iterations, 50 line-search steps,
eulerdamp on), the reference. Reported per candidate and height: the largest deviation of the base height
from the reference's over the landing, the deepest contact penetration and the final base height. Not a
test; a candidate that stays within a centimetre of the reference at every height is a fair choice.
"""

import argparse
import json

import mujoco
import numpy as np

from legged_rl import cli

REFERENCE = {"iterations": 100, "ls_iterations": 50, "eulerdamp": True}


def drop(model: mujoco.MjModel, env_cfg: dict, joint_idx, default, kp, kd, limits, height: float, seconds: float):
    """Base height trajectory (steps,) and deepest penetration (m) of one drop from ``height`` (feet above floor)."""
    data = mujoco.MjData(model)
    qpos_idx, qvel_idx = joint_idx
    data.qpos[qpos_idx] = default
    mujoco.mj_forward(model, data)
    # feet at the given height: shift the base so the lowest foot sphere is ``height`` above the floor
    feet = [g for g in range(model.ngeom) if model.geom_contype[g] == 1]
    lowest = min(data.geom_xpos[g][2] - model.geom_size[g][0] for g in feet)
    data.qpos[2] += height - lowest
    mujoco.mj_forward(model, data)
    z, depth = [], 0.0
    for _ in range(int(round(seconds / model.opt.timestep))):
        q, qd = data.qpos[qpos_idx], data.qvel[qvel_idx]
        data.ctrl[:] = np.clip(kp * (default - q) - kd * qd, -limits, limits)
        mujoco.mj_step(model, data)
        z.append(data.qpos[2])
        if data.ncon:
            depth = max(depth, float(-min(data.contact.dist[: data.ncon].min(), 0.0)))
    return np.array(z), depth


def main(args) -> int:
    spec, cfg, source = cli.load_config(args)
    env_cfg = cfg["env"]
    from legged_env.robots import get_robot

    robot = get_robot(env_cfg["robot"])
    base = mujoco.MjModel.from_xml_path(str(robot.XML_PATH))
    base.opt.timestep = env_cfg["sim_dt"]
    jids = [mujoco.mj_name2id(base, mujoco.mjtObj.mjOBJ_JOINT, n) for n in robot.JOINT_NAMES]
    joint_idx = (base.jnt_qposadr[jids], base.jnt_dofadr[jids])
    default = np.array(robot.DEFAULT_JOINT_POS)
    act = [int(np.where(base.actuator_trnid[:, 0] == j)[0][0]) for j in jids]
    limits = base.actuator_ctrlrange[act, 1]
    kp, kd = env_cfg["control"]["kp"], env_cfg["control"]["kd"]
    heights = [float(h) for h in np.linspace(*args.heights, args.num_heights)]

    def run(iterations: int, ls_iterations: int, eulerdamp: bool):
        model = mujoco.MjModel.from_xml_path(str(robot.XML_PATH))
        model.opt.timestep = env_cfg["sim_dt"]
        model.opt.iterations, model.opt.ls_iterations = iterations, ls_iterations
        if eulerdamp:
            model.opt.disableflags &= ~int(mujoco.mjtDisableBit.mjDSBL_EULERDAMP)
        else:
            model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_EULERDAMP)
        return [drop(model, env_cfg, joint_idx, default, kp, kd, limits, h, args.seconds) for h in heights]

    reference = run(**REFERENCE)
    candidates = []
    for it in args.iterations:
        for ls in args.ls_iterations:
            rows = []
            for h, (z, depth), (z_ref, _) in zip(heights, run(it, ls, False), reference, strict=True):
                rows.append(
                    {
                        "height": round(h, 3),
                        "max_base_height_error_cm": round(100 * float(np.max(np.abs(z - z_ref))), 2),
                        "max_penetration_cm": round(100 * depth, 2),
                        "final_base_height": round(float(z[-1]), 4),
                    }
                )
            candidates.append(
                {
                    "iterations": it,
                    "ls_iterations": ls,
                    "worst_base_height_error_cm": max(r["max_base_height_error_cm"] for r in rows),
                    "worst_penetration_cm": max(r["max_penetration_cm"] for r in rows),
                    "by_height": rows,
                }
            )
    out = {
        "task": spec.name,
        "reference": {
            **REFERENCE,
            "by_height": [
                {
                    "height": round(h, 3),
                    "max_penetration_cm": round(100 * d, 2),
                    "final_base_height": round(float(z[-1]), 4),
                }
                for h, (z, d) in zip(heights, reference, strict=True)
            ],
        },
        "candidates": candidates,
    }
    print(json.dumps(out, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = cli.base_parser(__doc__)
    p.add_argument("--iterations", type=cli.int_list_at_least(1), default=[1, 2, 3, 4, 6, 8], help="candidates")
    p.add_argument("--ls_iterations", type=cli.int_list_at_least(1), default=[5, 8], help="candidates")
    p.add_argument("--heights", type=cli.positive_float, nargs=2, default=[0.05, 0.45], help="lowest, highest drop (m)")
    p.add_argument("--num_heights", type=cli.int_at_least(1), default=9)
    p.add_argument("--seconds", type=cli.positive_float, default=1.0, help="simulated seconds per drop")
    return p


def run() -> None:
    """Console-script entry point: parse the command line and run."""
    cli.run_main(main, build_parser())

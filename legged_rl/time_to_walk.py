"""Wall-clock and env steps from ``train.py`` to a policy that walks (``benchmark.py --task=walk --time_to_walk``).

The default training command runs as a subprocess, alone on the machine, saving a checkpoint every ``eval_every``
iterations. Afterwards (so evaluating never slows the training being timed) the checkpoints are evaluated in
order with play.py's deterministic evaluation, nominal conditions (no observation noise, no pushes), and the
first one that meets a set of criteria gives that set's figures:

- ``time_to_walk_s``: seconds from launching the command to that checkpoint's file being written (start-up and
  compilation included: a user waits for them too);
- ``env_steps_to_walk``: iterations x ``num_steps_per_env`` x ``num_envs`` (comparable across machines).

Criteria (:data:`FORWARD`, :data:`JOYSTICK`): forward walking, vx in [0.3, 1.0] m/s: vx RMS < 0.25 m/s and falls
< 5%. Joystick: over the training command ranges (vx, vy and yaw rate together) vx and vy RMS < 0.25 m/s, yaw-rate
RMS < 0.3 rad/s, falls < 5%; and the same when turning in place (vx = vy = 0, yaw rate in [-1, 1] rad/s).
"""

from __future__ import annotations

import glob
import math
import os
import re
import subprocess
import sys
import time

# name -> (command ranges as --set overrides or None for the run's own, thresholds: metric -> upper bound)
FORWARD = {
    "forward": (
        ["env.commands.lin_vel_x=[0.3,1.0]", "env.commands.lin_vel_y=[0.0,0.0]", "env.commands.ang_vel_yaw=[0.0,0.0]"],
        {"lin_vel_x_rms": 0.25, "fall_rate": 0.05},
    )
}
JOYSTICK = {
    "joystick": (None, {"lin_vel_x_rms": 0.25, "lin_vel_y_rms": 0.25, "yaw_rate_rms": 0.3, "fall_rate": 0.05}),
    "turn_in_place": (
        ["env.commands.lin_vel_x=[0.0,0.0]", "env.commands.lin_vel_y=[0.0,0.0]", "env.commands.ang_vel_yaw=[-1.0,1.0]"],
        {"lin_vel_x_rms": 0.25, "lin_vel_y_rms": 0.25, "yaw_rate_rms": 0.3, "fall_rate": 0.05},
    ),
}
NOMINAL = ["env.noise.enabled=false", "env.domain_rand.push_vel_xy=0.0"]

# --referee: joystick commands (vx, vy, yaw rate) for the exported policy in plain MuJoCo (scripts/sim2sim.py's
# referee physics: default solver, every geom colliding, the MJCF's joint damping and frictionloss); the RMS over
# the commands of (mean velocity reached - command) against JOYSTICK's bounds, and no fall.
REFEREE_COMMANDS = [
    (0.5, 0.0, 0.0),
    (1.0, 0.0, 0.0),
    (-0.5, 0.0, 0.0),
    (0.0, 0.4, 0.0),
    (0.5, 0.3, 0.5),
    (0.0, 0.0, 1.0),
    (0.0, 0.0, -1.0),
]
REFEREE_SECONDS = 10.0


def referee_summary(results: list[dict]) -> dict:
    """``run_command`` results (one per :data:`REFEREE_COMMANDS` entry) -> RMS errors, falls, and ``passed``."""
    out = {}
    for key, index in (("lin_vel_x", 0), ("lin_vel_y", 1), ("yaw_rate", 2)):
        errors = [r[key] - r["command"][index] for r in results]
        rms = math.sqrt(sum(e * e for e in errors) / len(errors))
        out[f"{key}_rms"] = None if math.isnan(rms) else round(rms, 4)  # NaN: a fall within the settling second
    out["falls"] = sum(bool(r["fell"]) for r in results)
    bounds = JOYSTICK["joystick"][1]
    rms_ok = all(out[k] is not None and out[k] < bounds[k] for k in ("lin_vel_x_rms", "lin_vel_y_rms", "yaw_rate_rms"))
    out["passed"] = out["falls"] == 0 and rms_ok
    return out


def train_command(task: str, seed: int, log_root: str, eval_every: int, extra: list[str]) -> list[str]:
    """The default training command (``train.py --task=<task> --seed <seed>``) with checkpoints every
    ``eval_every`` iterations into ``log_root``, plus ``extra`` arguments (``--set``, ``--max_iterations``, ...)."""
    return [
        sys.executable,
        "-m",
        "legged_rl.commands.train",
        f"--task={task}",
        "--seed",
        str(seed),
        "--log_root",
        os.path.abspath(log_root),  # the same directory when started in another checkout
        "--run_name",
        "time_to_walk",
        "--set",
        f"runner.save_interval={eval_every}",
        *extra,
    ]


def checkout_options(checkout: str | None) -> dict:
    """``subprocess`` options that make ``python -m legged_rl.commands.train`` run ``checkout``'s code (another
    checkout of this repo, e.g. ``git worktree add /tmp/before <commit>``): started in it (``-m`` puts the working
    directory first on ``sys.path``) with it first on ``PYTHONPATH`` (for the ranks torchrun starts as scripts).
    ``{}`` (this process's code) without one."""
    if checkout is None:
        return {}
    if not os.path.isfile(os.path.join(checkout, "legged_rl", "commands", "train.py")):
        from legged_rl.cli import ConfigError

        missing = "no legged_rl/commands/train.py"
        raise ConfigError(f"--train_checkout {checkout} is not a checkout of this repo ({missing})")
    path = os.path.abspath(checkout)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([path, *filter(None, [os.environ.get("PYTHONPATH")])])}
    return {"env": env, "cwd": path}


def run_training(cmd: list[str], timeout_s: float, options: dict | None = None) -> tuple[float, str, str]:
    """Run ``cmd`` (with ``subprocess`` ``options``, e.g. :func:`checkout_options`'); returns (its start time from
    ``time.time()``, stdout, stderr). A failure raises RuntimeError."""
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, **(options or {}))
    if proc.returncode != 0:
        raise RuntimeError(f"training failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    return start, proc.stdout, proc.stderr


def checkpoints(run_dir: str) -> list[tuple[int, str]]:
    """``(iteration, path)`` of every ``model_<it>.pt`` in ``run_dir``, in iteration order."""
    found = []
    for path in glob.glob(os.path.join(run_dir, "model_*.pt")):
        match = re.fullmatch(r"model_(\d+)\.pt", os.path.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def meets(metrics: dict, thresholds: dict) -> bool:
    return all(metrics[key] < bound for key, bound in thresholds.items())


def first_meeting(
    evaluate_checkpoint, ckpts: list[tuple[int, str]], criteria: dict, start_index: int = 0
) -> tuple[int | None, list[dict]]:
    """Index into ``ckpts`` of the first checkpoint (from ``start_index``) that meets every set of ``criteria``
    (``evaluate_checkpoint(iteration, name) -> metrics``), and the evaluations made; None if none does."""
    log = []
    for i in range(start_index, len(ckpts)):
        it = ckpts[i][0]
        ok = True
        for name, (_, thresholds) in criteria.items():
            metrics = evaluate_checkpoint(it, name)
            passed = meets(metrics, thresholds)
            log.append({"iteration": it, "criteria": name, "passed": passed, **{k: metrics[k] for k in thresholds}})
            if not passed:
                ok = False
                break  # the other sets cannot rescue this checkpoint
        if ok:
            return i, log
    return None, log


def figures(index: int | None, ckpts: list[tuple[int, str]], start: float, steps_per_iteration: int) -> dict:
    """``time_to_walk_s`` / ``env_steps_to_walk`` / ``iteration`` of the checkpoint at ``index`` (None: not met)."""
    if index is None:
        return {"time_to_walk_s": None, "env_steps_to_walk": None, "iteration": None}
    it, path = ckpts[index]
    return {
        "time_to_walk_s": round(os.path.getmtime(path) - start, 1),
        "env_steps_to_walk": it * steps_per_iteration,
        "iteration": it,
    }

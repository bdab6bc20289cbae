"""Run an exported policy in plain MuJoCo (no JAX): python scripts/sim2sim.py --task=walk --load_run -1.

Needs ``scripts/export.py`` to have written ``<run>/exported/``. The physics is the referee by default
(``--physics referee``: MuJoCo's default solver, every geom colliding, robot self-collisions included; see
legged_rl/sim2sim.py); ``--physics training`` runs the training model instead.

walk: follows each ``--command vx,vy,yaw`` for ``--seconds`` and prints JSON (a list, one entry per command) with
the mean velocities reached, whether the robot fell, and its non-foot terrain contacts and deepest penetrations.

climb: ``--num_episodes`` episodes (default 5 per curriculum level) spread over the levels round-robin, each on
a track sampled at its level (``--seed``), with a command vx sampled in ``env.commands.lin_vel_x``; prints play.py's
climb metrics (success_rate, obstacles_cleared_per_episode, fall_rate, by_obstacle_height) plus non-foot contacts
and penetrations.

A ``forward_depth`` policy sees a depth image rendered by ``mujoco.Renderer`` (OpenGL: ``MUJOCO_GL=egl`` when unset)
through the run's camera model, nominal (the middle of each ``env.forward_depth`` range); ``env.proprio_latency_steps``
delays its IMU and joint readings likewise.

``--perturbed`` adds the actor's observation noise and the training's velocity pushes, as play.py's does, and draws
the camera model and the proprioception latency per episode from their ranges.
Both write ``<run>/sim2sim_metrics.json``. ``--set env.KEY=VALUE`` changes the run's env config here (e.g.
``--set env.episode_length_s=5``). ``--policy_file policy.onnx`` runs the ONNX export with onnxruntime.
"""

import argparse
import json
import os
import time

from legged_rl import cli

DEFAULT_COMMANDS = [(0.5, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 0.5)]
EPISODES_PER_LEVEL = 5


def main(args) -> int:
    spec, cfg, _ = cli.load_config(args)
    path = cli.find_checkpoint(args, cfg["runner"]["experiment_name"])
    run_dir = os.path.dirname(path)
    export_dir = os.path.join(run_dir, "exported")
    meta_path = os.path.join(export_dir, "policy.json")
    if not os.path.isfile(meta_path):
        raise cli.CheckpointError(f"no export in {export_dir}; run scripts/export.py first")
    with open(meta_path) as f:
        meta = json.load(f)
    task = meta.get("task", spec.name)
    if task != spec.name:
        raise cli.CheckpointError(f"export {export_dir} is a {task} policy, not --task={spec.name}")
    if task == "climb" and args.command:
        raise cli.ConfigError("--command is for walk; climb samples vx in env.commands.lin_vel_x")
    # the run's env (policy.json's, or config.json's for exports before it had one) with the --set env.* items
    env_items = [item for item in args.overrides if item.startswith("env.")]
    env_cfg = meta["env"] if "env" in meta else cli.read_run_config(run_dir)["env"]
    env_cfg = cli.resolve_env_overrides(spec, env_cfg, env_items)
    from legged_rl.sim2sim import MujocoDeployment, run_command
    from legged_rl.sim2sim_climb import run_climb
    from st_rl.utils.io import atomic_write_json

    try:
        deployment = MujocoDeployment(
            export_dir,
            policy_file=args.policy_file,
            physics=args.physics,
            env_cfg=env_cfg,
            perturbed=args.perturbed,
            seed=0 if args.seed is None else args.seed,
        )
    except ValueError as e:  # an export this deployment cannot run (a sensor it lacks, no OpenGL for the camera)
        raise cli.CheckpointError(f"export {export_dir}: {e}") from e
    seed = 0 if args.seed is None else args.seed
    info = {
        "task": task,
        "physics": args.physics,
        "perturbed": args.perturbed,
        "policy_file": args.policy_file,
        "checkpoint": path,
    }
    start = time.perf_counter()
    if task == "climb":
        num_episodes = args.num_episodes or EPISODES_PER_LEVEL * deployment.track_spec.num_levels
        metrics = run_climb(deployment, num_episodes, seed)
        out = {**metrics, **info, "seed": seed, "env_overrides": env_items}
        printed = out
    else:
        results = [run_command(deployment, command, args.seconds) for command in args.command or DEFAULT_COMMANDS]
        num_episodes = len(results)
        out = {**info, "seconds": args.seconds, "env_overrides": env_items, "commands": results}
        printed = results
    out["wall_s_per_episode"] = (time.perf_counter() - start) / num_episodes
    atomic_write_json(os.path.join(run_dir, "sim2sim_metrics.json"), out)
    print(json.dumps(printed, indent=2))
    return 0


def parse_command(text: str) -> tuple[float, float, float]:
    """argparse ``type`` of ``--command``: ``"vx,vy,yaw_rate"`` -> three floats (checked before anything runs)."""
    try:
        command = tuple(float(x) for x in text.split(","))
    except ValueError:
        command = ()
    if len(command) != 3:
        raise argparse.ArgumentTypeError(f"expected vx,vy,yaw_rate, got {text!r}")
    return command


def run() -> None:
    """Console-script entry point: parse the command line and run."""
    parser = cli.base_parser(__doc__)
    parser.add_argument(
        "--command",
        action="append",
        type=parse_command,
        default=None,
        help="walk: vx,vy,yaw_rate (repeatable; default 0.5,0,0 1.0,0,0 0,0,0.5)",
    )
    parser.add_argument("--seconds", type=cli.positive_float, default=10.0, help="walk: seconds per command")
    parser.add_argument(
        "--num_episodes",
        type=cli.int_at_least(1),
        default=None,
        help=f"climb: episodes over the levels round-robin (default {EPISODES_PER_LEVEL} per level)",
    )
    parser.add_argument(
        "--physics",
        choices=("referee", "training"),
        default="referee",
        help="referee: MuJoCo's default solver, every geom colliding (default); training: the training model",
    )
    parser.add_argument(
        "--perturbed",
        action="store_true",
        help="as play.py --perturbed: the actor's observation noise and the training pushes, the camera model and "
        "proprioception latency drawn per episode (default: noise and pushes off, nominal sensors)",
    )
    parser.add_argument(
        "--policy_file",
        choices=("policy.pt", "policy.onnx"),
        default="policy.pt",
        help="which export to run: TorchScript (torch) or ONNX (onnxruntime); default policy.pt",
    )
    cli.run_main(main, parser)


if __name__ == "__main__":
    run()

"""Run an exported policy in plain MuJoCo (no JAX): python scripts/sim2sim.py --task=walk --load_run -1.

Needs ``scripts/export.py`` to have written ``<run>/exported/``. Prints JSON with the mean
velocities reached for each ``--command vx,vy,yaw`` and whether the robot fell. ``--policy_file policy.onnx``
runs the ONNX export with onnxruntime instead of the TorchScript one.
"""

import argparse
import json
import os

from legged_rl import cli

DEFAULT_COMMANDS = [(0.5, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 0.5)]


def main(args) -> int:
    spec, cfg, _ = cli.load_config(args)
    path = cli.find_checkpoint(args, cfg["runner"]["experiment_name"])
    export_dir = os.path.join(os.path.dirname(path), "exported")
    if not os.path.isfile(os.path.join(export_dir, "policy.json")):
        raise cli.CheckpointError(f"no export in {export_dir}; run scripts/export.py first")
    from legged_rl.sim2sim import MujocoDeployment, run_command

    try:
        deployment = MujocoDeployment(export_dir, policy_file=args.policy_file)
    except ValueError as e:  # an export this deployment cannot run (e.g. it needs a height scan)
        raise cli.CheckpointError(f"export {export_dir}: {e}") from e
    results = [run_command(deployment, command, args.seconds) for command in args.command or DEFAULT_COMMANDS]
    print(json.dumps(results, indent=2))
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
        help="vx,vy,yaw_rate (repeatable; default 0.5,0,0 1.0,0,0 0,0,0.5)",
    )
    parser.add_argument("--seconds", type=cli.positive_float, default=10.0, help="seconds per command")
    parser.add_argument(
        "--policy_file",
        choices=("policy.pt", "policy.onnx"),
        default="policy.pt",
        help="which export to run: TorchScript (torch) or ONNX (onnxruntime); default policy.pt",
    )
    cli.run_main(main, parser)


if __name__ == "__main__":
    run()

"""Run an exported policy in plain MuJoCo (no JAX): python scripts/sim2sim.py --task=walk --load_run -1.

Needs ``scripts/export.py`` to have written ``<run>/exported/``. Prints JSON with the mean
velocities reached for each ``--command vx,vy,yaw`` and whether the robot fell.
"""

import json
import os

from legged_env import cli

DEFAULT_COMMANDS = ["0.5,0,0", "1.0,0,0", "0,0,0.5"]


def main(args) -> int:
    spec, cfg, _ = cli.load_config(args)
    path = cli.find_checkpoint(args, cfg["runner"]["experiment_name"])
    export_dir = os.path.join(os.path.dirname(path), "exported")
    if not os.path.isfile(os.path.join(export_dir, "policy.json")):
        raise cli.CheckpointError(f"no export in {export_dir}; run scripts/export.py first")
    from legged_env.sim2sim import MujocoDeployment, run_command

    deployment = MujocoDeployment(export_dir)
    results = []
    for item in args.command or DEFAULT_COMMANDS:
        try:
            command = tuple(float(x) for x in item.split(","))
        except ValueError:
            command = ()
        if len(command) != 3:
            raise cli.ConfigError(f"--command {item}: expected vx,vy,yaw_rate")
        results.append(run_command(deployment, command, args.seconds))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    parser = cli.base_parser(__doc__)
    parser.add_argument(
        "--command", action="append", default=None, help=f"vx,vy,yaw_rate (repeatable; default {DEFAULT_COMMANDS})"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per command")
    cli.run_main(main, parser)

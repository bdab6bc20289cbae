"""Export a trained policy for the robot: python scripts/export.py --task=walk --load_run -1.

The command lives in :mod:`legged_rl.commands.export` (installed as ``legged-rl-export``)."""

from legged_rl.commands.export import run

if __name__ == "__main__":
    run()

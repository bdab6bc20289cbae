"""Train a policy: python scripts/train.py --task=walk [--num_envs N] [--max_iterations N] [--resume ...].

The command lives in :mod:`legged_rl.commands.train` (installed as ``legged-rl-train``)."""

from legged_rl.commands.train import run

if __name__ == "__main__":
    run()

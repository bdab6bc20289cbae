"""Evaluate a trained policy deterministically: python scripts/play.py --task=walk --load_run -1 [--video].

The command lives in :mod:`legged_rl.commands.play` (installed as ``legged-rl-play``)."""

from legged_rl.commands.play import run

if __name__ == "__main__":
    run()

"""Record a trained policy's motion as an AMP reference clip: python scripts/record_motion.py --task=walk --load_run -1.

The command lives in :mod:`legged_rl.commands.record_motion` (installed as ``legged-rl-record-motion``)."""

from legged_rl.commands.record_motion import run

if __name__ == "__main__":
    run()

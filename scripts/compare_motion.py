"""Gait-likeness of recorded motion: python scripts/compare_motion.py --clips A.npz B.npz [--discriminator_run RUN].

The command lives in :mod:`legged_rl.commands.compare_motion` (installed as ``legged-rl-compare-motion``)."""

from legged_rl.commands.compare_motion import run

if __name__ == "__main__":
    run()

"""Write a parametric Go1 gait as an AMP reference clip: python scripts/make_reference_motion.py --gait trot.

The command lives in :mod:`legged_rl.commands.make_reference_motion`
(installed as ``legged-rl-make-reference-motion``)."""

from legged_rl.commands.make_reference_motion import run

if __name__ == "__main__":
    run()

"""Run an exported policy in plain MuJoCo (no JAX): python scripts/sim2sim.py --task=walk --load_run -1.

The command lives in :mod:`legged_rl.commands.sim2sim` (installed as ``legged-rl-sim2sim``)."""

from legged_rl.commands.sim2sim import run

if __name__ == "__main__":
    run()

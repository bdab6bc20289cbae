"""Solver check (landings against MuJoCo's default solver), printed as one JSON object.

The command lives in :mod:`legged_rl.commands.solver_check` (installed as ``legged-rl-solver-check``)."""

from legged_rl.commands.solver_check import run

if __name__ == "__main__":
    run()

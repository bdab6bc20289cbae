"""Throughput benchmark, printed as one JSON object: python scripts/benchmark.py --task=walk.

The command lives in :mod:`legged_rl.commands.benchmark` (installed as ``legged-rl-benchmark``)."""

from legged_rl.commands.benchmark import run

if __name__ == "__main__":
    run()

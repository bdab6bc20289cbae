"""A torchrun worker for the failure tests: trains the point-mass env with the runner, one rank misbehaving.

``--fail_rank R`` raises on rank R in its second iteration; ``--hang_rank R`` makes rank R stop answering
(sleep) there, so the others wait in a collective until ``--timeout`` seconds.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from legged_rl import cli  # noqa: E402
from st_rl.runners import OnPolicyRunner  # noqa: E402
from st_rl.utils import distributed  # noqa: E402
from tests.st_rl.dummy_env import PointMassEnv  # noqa: E402

STEPS_PER_ITERATION = 8


class MisbehavingEnv(PointMassEnv):
    def __init__(self, action: str | None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.action, self.steps = action, 0

    def step(self, actions):
        self.steps += 1
        if self.steps == STEPS_PER_ITERATION + 2:
            if self.action == "fail":
                raise RuntimeError("injected failure")
            if self.action == "hang":
                time.sleep(3600)
        return super().step(actions)


def main(args) -> int:
    dist = distributed.init_distributed("cpu", timeout_s=args.timeout)
    try:
        action = "fail" if dist.rank == args.fail_rank else "hang" if dist.rank == args.hang_rank else None
        env = MisbehavingEnv(action, num_envs=4, seed=dist.rank)
        cfg = {
            "policy": {"actor_hidden_dims": [8], "critic_hidden_dims": [8]},
            "runner": {"num_steps_per_env": STEPS_PER_ITERATION, "print_progress": False},
        }
        OnPolicyRunner(env, cfg, None, dist=dist).learn(5)
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    parser = cli.base_parser(__doc__)
    parser.add_argument("--fail_rank", type=int, default=None)
    parser.add_argument("--hang_rank", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=600)
    cli.run_main(main, parser)

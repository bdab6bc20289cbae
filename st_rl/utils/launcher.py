"""``python -m st_rl.utils.launcher ARGS``: torch's launcher (``torch.distributed.run``, the same arguments) that
leaves the reporting of a failed rank to the rank.

Every rank of ``scripts/train.py`` already prints its own ``error: [rank N] ...`` line (or a traceback, for a bug)
before it exits non-zero; torch's launcher would then add its own logging and a ``ChildFailedError`` traceback
after it, so the one line that says what went wrong was no longer the last. Here the launcher's logging is
silenced and a failed rank only makes the launcher exit with that rank's code; a rank killed by a signal (which
printed nothing) gets one line naming the rank and the signal.
"""

from __future__ import annotations

import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    # The launcher's own log lines ("Setting OMP_NUM_THREADS", "Sending process N closing signal", "failed
    # (exitcode: 2)"): its loggers exist once its modules are imported, each with its own level; this process only.
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        torchrun.run(torchrun.parse_args(argv))
    except ChildFailedError as e:
        rank, failure = e.get_first_failure()
        if failure.exitcode > 0:
            return failure.exitcode  # the rank printed its error (run_main) or Python printed its traceback
        how = f"was killed by {failure.signal_name()} (exit code {failure.exitcode})"
        print(f"error: rank {rank} {how}", file=sys.stderr)
        return 128 - failure.exitcode if failure.exitcode < 0 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training logs: TensorBoard scalars (rsl_rl key names) and a one-line live progress display."""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Mapping

import torch


def _fmt_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def episode_means(ep_infos: list[Mapping[str, float | torch.Tensor]]) -> dict[str, float]:
    """Mean of each ``infos["episode"]`` key over the steps of one iteration that reported a value for it.

    Values are floats or 0-d tensors; NaN means "no episode ended this step" (an env that logs without host
    syncs reports every key every step), so it is skipped, and a key with no value at all is left out. The
    tensors are reduced on their device: one transfer per key and iteration.
    """
    values: dict[str, list[torch.Tensor]] = {}
    for info in ep_infos:
        for key, value in info.items():
            values.setdefault(key, []).append(torch.as_tensor(value, dtype=torch.float32).reshape(()))
    means = {key: float(torch.stack([v.to(vs[0].device) for v in vs]).nanmean()) for key, vs in values.items()}
    return {key: mean for key, mean in means.items() if not math.isnan(mean)}


def combine_rank_logs(
    ranks: list[tuple[dict[str, float], dict[str, float], list[float], list[float]]],
) -> tuple[dict[str, float], dict[str, float], list[float], list[float]]:
    """Every rank's ``(update_info, episodes, rewards, lengths)`` as one: metrics and ``Episode/*`` terms
    averaged over the ranks that report them, recent episode returns and lengths concatenated."""

    def mean_over_ranks(dicts: list[dict[str, float]]) -> dict[str, float]:
        keys = dict.fromkeys(k for d in dicts for k in d)
        return {k: statistics.fmean(d[k] for d in dicts if k in d) for k in keys}

    return (
        mean_over_ranks([r[0] for r in ranks]),
        mean_over_ranks([r[1] for r in ranks]),
        [x for r in ranks for x in r[2]],
        [x for r in ranks for x in r[3]],
    )


class TrainLogger:
    """Writes ``Loss/*``, ``Policy/*``, ``Perf/*``, ``Train/*``, ``Episode/*`` scalars and prints progress.

    TensorBoard is only used when ``log_dir`` is set. On a TTY the progress line is overwritten with
    ``\\r``; otherwise one plain line is printed per iteration.
    """

    def __init__(self, log_dir: str | None, loss_names: list[str], print_progress: bool = True) -> None:
        self.writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=log_dir, flush_secs=10)
        self.loss_names = set(loss_names) | {"learning_rate"}
        self.print_progress = print_progress
        self.is_tty = sys.stdout.isatty()
        self._line_open = False

    def _scalar(self, key: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(key, value, step)

    def log(
        self,
        it: int,
        total_it: int,
        update_info: Mapping[str, float],
        episodes: Mapping[str, float],
        rewards: list[float],
        lengths: list[float],
        perf: Mapping[str, float],
    ) -> None:
        """Record iteration ``it`` (1-based count of completed iterations) of ``total_it``.

        Args:
            update_info: output of the algorithm's ``update()`` (losses and metrics).
            episodes: per-term episode means of this iteration (:func:`episode_means` of the ``infos["episode"]``
                dicts, averaged over ranks in multi-process training).
            rewards, lengths: returns and lengths of recently finished episodes.
            perf: ``fps``, ``collection_time``, ``learning_time``, ``mean_noise_std``, ``eta``.
        """
        for key, value in update_info.items():
            self._scalar(f"{'Loss' if key in self.loss_names else 'Policy'}/{key}", value, it)
        self._scalar("Policy/mean_noise_std", perf["mean_noise_std"], it)
        self._scalar("Perf/total_fps", perf["fps"], it)
        self._scalar("Perf/collection_time", perf["collection_time"], it)
        self._scalar("Perf/learning_time", perf["learning_time"], it)
        for key, value in episodes.items():
            self._scalar(f"Episode/{key}", value, it)
        mean_reward = statistics.fmean(rewards) if rewards else float("nan")
        mean_length = statistics.fmean(lengths) if lengths else float("nan")
        if rewards:
            self._scalar("Train/mean_reward", mean_reward, it)
            self._scalar("Train/mean_episode_length", mean_length, it)
        if self.print_progress:
            self._print(
                f"it {it}/{total_it} | {perf['fps']:.0f} steps/s | mean reward {mean_reward:.3f} | "
                f"mean ep len {mean_length:.1f} | ETA {_fmt_duration(perf['eta'])}"
            )

    def _print(self, line: str) -> None:
        if self.is_tty:
            sys.stdout.write("\r\033[K" + line)
            self._line_open = True
        else:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        """End the progress line and flush TensorBoard."""
        if self._line_open:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self._line_open = False
        if self.writer is not None:
            self.writer.flush()


class Timer:
    """Wall-clock stopwatch for collection/learning times (``time.perf_counter``)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def lap(self) -> float:
        """Seconds since the last lap (or construction)."""
        now = time.perf_counter()
        elapsed, self.start = now - self.start, now
        return elapsed

"""Training logs: TensorBoard scalars (rsl_rl key names) and a one-line live progress display."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Mapping

import torch


def _fmt_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def episode_means(ep_infos: list[Mapping[str, float | torch.Tensor]]) -> dict[str, float]:
    """Mean of each ``infos["episode"]`` key over the steps of one iteration that reported it."""
    values: dict[str, list[float]] = {}
    for info in ep_infos:
        for key, value in info.items():
            values.setdefault(key, []).append(float(value))
    return {key: statistics.fmean(v) for key, v in values.items()}


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
        ep_infos: list[Mapping[str, float | torch.Tensor]],
        rewards: list[float],
        lengths: list[float],
        perf: Mapping[str, float],
    ) -> None:
        """Record iteration ``it`` (1-based count of completed iterations) of ``total_it``.

        Args:
            update_info: output of the algorithm's ``update()`` (losses and metrics).
            ep_infos: the ``infos["episode"]`` dicts collected this iteration.
            rewards, lengths: returns and lengths of recently finished episodes.
            perf: ``fps``, ``collection_time``, ``learning_time``, ``mean_noise_std``, ``eta``.
        """
        for key, value in update_info.items():
            self._scalar(f"{'Loss' if key in self.loss_names else 'Policy'}/{key}", value, it)
        self._scalar("Policy/mean_noise_std", perf["mean_noise_std"], it)
        self._scalar("Perf/total_fps", perf["fps"], it)
        self._scalar("Perf/collection_time", perf["collection_time"], it)
        self._scalar("Perf/learning_time", perf["learning_time"], it)
        for key, value in episode_means(ep_infos).items():
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

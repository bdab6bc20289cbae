"""Training logs: TensorBoard scalars (rsl_rl key names), optionally the same scalars in Weights & Biases, and a
one-line live progress display."""

from __future__ import annotations

import math
import netrc
import os
import statistics
import sys
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import torch

from st_rl.utils.config import ConfigError

LOGGERS = ("tensorboard", "wandb")
WANDB_MISSING = '--logger wandb (runner.logger) needs wandb: pip install -e ".[wandb]"'


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


def import_wandb() -> Any:
    """The ``wandb`` module, imported only when a run selects it; ConfigError naming the extra when it is missing."""
    try:
        import wandb
    except ImportError:
        raise ConfigError(WANDB_MISSING) from None
    return wandb


def wandb_credentials_found() -> bool:
    """Whether W&B could log in without a prompt: ``WANDB_API_KEY`` or ``WANDB_IDENTITY_TOKEN_FILE`` set, or a
    netrc entry (``NETRC`` or ``~/.netrc``, what ``wandb login`` writes) for the host of ``WANDB_BASE_URL``
    (default ``api.wandb.ai``). Reads only; an unreadable netrc counts as none."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or ""
    path = os.path.expanduser(os.environ.get("NETRC") or "~/.netrc")
    try:
        return os.path.isfile(path) and netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


class WandbWriter:
    """One Weights & Biases run receiving, per iteration, the scalars that went to TensorBoard (same keys, same step).

    The run is named after the run directory ``log_dir``, keeps its files under it (``<log_dir>/wandb/``) and has
    ``config`` (what ``config.json`` holds) as its config. Its mode is ``WANDB_MODE`` when set (``online``,
    ``offline``, ``disabled``); without it and without credentials (:func:`wandb_credentials_found`) the run is
    offline, said in one printed line, instead of waiting at a login prompt.
    """

    def __init__(self, log_dir: str, project: str, config: Mapping[str, Any] | None = None) -> None:
        wandb = import_wandb()
        mode = None  # wandb's own default: WANDB_MODE, else online
        if not os.environ.get("WANDB_MODE") and not wandb_credentials_found():
            mode = "offline"
            print(
                f"wandb: no API key (WANDB_API_KEY or `wandb login`), logging offline under {log_dir}/wandb; "
                f"upload it later with `wandb sync {log_dir}/wandb/offline-run-*`",
                flush=True,
            )
        self.run = wandb.init(
            project=project,
            name=os.path.basename(os.path.normpath(log_dir)),
            dir=log_dir,
            config=dict(config or {}),
            mode=mode,
        )

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        self.run.log(dict(scalars), step=step)

    def finish(self) -> None:
        self.run.finish()


class TrainLogger:
    """Writes ``Loss/*``, ``Policy/*``, ``Perf/*``, ``Train/*``, ``Episode/*`` scalars and prints progress.

    TensorBoard is only used when ``log_dir`` is set; so is W&B, with ``logger="wandb"`` (:class:`WandbWriter`,
    project ``wandb_project``, config ``run_config``), which gets the same scalars as TensorBoard. On a TTY the
    progress line is overwritten with ``\\r``; otherwise one plain line is printed per iteration.
    """

    def __init__(
        self,
        log_dir: str | None,
        loss_names: list[str],
        print_progress: bool = True,
        logger: str = "tensorboard",
        wandb_project: str = "default",
        run_config: Mapping[str, Any] | None = None,
    ) -> None:
        if logger not in LOGGERS:
            raise ConfigError(f"logger must be one of {', '.join(LOGGERS)}, got {logger!r}")
        self.writer = None
        self.wandb: WandbWriter | None = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=log_dir, flush_secs=10)
            if logger == "wandb":
                self.wandb = WandbWriter(log_dir, wandb_project, run_config)
        self.loss_names = set(loss_names) | {"learning_rate"}
        self.print_progress = print_progress
        self.is_tty = sys.stdout.isatty()
        self._line_open = False
        self._scalars: dict[str, float] = {}  # this iteration's, for W&B in one call

    def _scalar(self, key: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(key, value, step)
        self._scalars[key] = value

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
        if self.wandb is not None:
            self.wandb.log(self._scalars, it)
        self._scalars = {}
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

    def finish(self) -> None:
        """:meth:`close`, then close TensorBoard's file and finish the W&B run; nothing is logged after this."""
        self.close()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


class Timer:
    """Wall-clock stopwatch for collection/learning times (``time.perf_counter``)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def lap(self) -> float:
        """Seconds since the last lap (or construction)."""
        now = time.perf_counter()
        elapsed, self.start = now - self.start, now
        return elapsed

"""Multi-process training with ``torch.distributed``: one process per CPU core (gloo) or per GPU (NCCL).

Processes are started by ``torchrun`` (or ``python scripts/train.py --nproc N``, which calls it), which sets
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``. Every rank steps its own envs and keeps its own rollout; the
update stays the single-process one on the union of the rollouts because everything that is a mean over
samples is averaged over ranks: gradients (one flat all-reduce per mini-batch), the KL of the adaptive
learning rate, advantage mean/std and the observation normaliser's batch moments. Rank 0 writes all files.

Without those variables :func:`init_distributed` returns ``None`` and nothing here runs: a single process
pays no distributed overhead. PyTorch only (never imports jax).
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from st_rl.utils.config import ConfigError

DEFAULT_TIMEOUT_S = 600.0
TIMEOUT_ENV = "ST_RL_DIST_TIMEOUT_S"


def launched_by_torchrun() -> bool:
    """True in a process started by torchrun / ``torch.distributed.run`` (``LOCAL_RANK`` is set)."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job, and the collectives training needs (default process group)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs and writes files."""
        return self.rank == 0

    def broadcast_module(self, module: nn.Module) -> None:
        """Overwrite every parameter and buffer of ``module`` with rank 0's, as one flat broadcast per dtype."""
        tensors = [t for t in (*module.parameters(), *module.buffers())]
        for dtype in sorted({t.dtype for t in tensors}, key=str):
            group = [t for t in tensors if t.dtype == dtype]
            flat = torch.cat([t.detach().reshape(-1) for t in group]).to(self.device)
            dist.broadcast(flat, src=0)
            _unflatten_into(flat, group)

    def all_reduce_grads(self, params: Iterable[nn.Parameter], *scalars: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Average the gradients of ``params`` over ranks in place, with ONE all-reduce of a flat buffer.

        ``scalars`` (0-d tensors, e.g. the mini-batch KL) ride in the same buffer; returns their rank means.
        A parameter without a gradient counts as a zero gradient (every rank sends the same layout).
        """
        params = [p for p in params if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        grads = [p.grad for p in params]
        extra = [s.detach().reshape(1).to(grads[0].dtype) for s in scalars]
        flat = torch.cat([g.reshape(-1) for g in grads] + extra).to(self.device)
        dist.all_reduce(flat)
        flat /= self.world_size
        _unflatten_into(flat, grads)
        num_extra = len(extra)
        return tuple(flat[flat.numel() - num_extra :].unbind()) if num_extra else ()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum over ranks of ``tensor`` (any shape); returns a new tensor on ``tensor``'s device."""
        out = tensor.detach().clone().to(self.device)
        dist.all_reduce(out)
        return out.to(tensor.device)

    def all_reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """Mean over ranks of ``tensor`` (any shape); returns a new tensor."""
        return self.all_reduce_sum(tensor) / self.world_size

    def mean_std(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and unbiased std of all elements of ``x`` on all ranks (two passes, as ``x.mean(), x.std()``)."""
        local = torch.stack([torch.tensor(float(x.numel()), dtype=torch.float64, device=x.device), x.sum().double()])
        count, total = self.all_reduce_sum(local).unbind()
        mean = (total / count).to(x.dtype)
        sq = self.all_reduce_sum((x - mean).pow(2).sum())
        return mean, torch.sqrt(sq / (count - 1)).to(x.dtype)

    def merge_moments(
        self, count: int, mean: torch.Tensor, var: torch.Tensor
    ) -> tuple[int, torch.Tensor, torch.Tensor]:
        """Moments of the union of every rank's batch from each rank's ``(count, mean, var)`` (biased var).

        One all-gather; the ranks' moments are combined in rank order (Chan et al.), so every rank gets
        bit-identical results. ``mean`` and ``var`` keep their shape and dtype.
        """
        packed = torch.cat([torch.tensor([float(count)], dtype=torch.float64), mean.double().cpu().reshape(-1)])
        packed = torch.cat([packed, var.double().cpu().reshape(-1)]).to(self.device)
        gathered = [torch.empty_like(packed) for _ in range(self.world_size)]
        dist.all_gather(gathered, packed)
        n = mean.numel()
        total, m, v = 0.0, torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
        for row in gathered:
            row = row.cpu()
            c, m_r, v_r = row[0].item(), row[1 : 1 + n], row[1 + n :]
            if c == 0:
                continue
            new_total = total + c
            delta = m_r - m
            # M2 = M2_a + M2_b + delta^2 * n_a * n_b / n  (as variances: divide by the new count)
            v = (v * total + v_r * c + delta.pow(2) * total * c / new_total) / new_total
            m = m + delta * c / new_total
            total = new_total
        return int(total), m.reshape(mean.shape).to(mean), v.reshape(var.shape).to(var)

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's picklable ``obj``, in rank order (on every rank)."""
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def _unflatten_into(flat: torch.Tensor, tensors: list[torch.Tensor]) -> None:
    offset = 0
    with torch.no_grad():
        for t in tensors:
            n = t.numel()
            t.copy_(flat[offset : offset + n].view_as(t))
            offset += n


def init_distributed(device: str | torch.device = "cpu", timeout_s: float | None = None) -> DistributedContext | None:
    """Join the torchrun job: ``None`` outside torchrun or with ``WORLD_SIZE=1`` (nothing initialised).

    On CPU: gloo, and the process pins itself to core ``local_rank % cpu_count`` with one torch thread.
    On CUDA: NCCL on ``cuda:<local_rank>``. Collectives time out after ``timeout_s`` (default
    ``$ST_RL_DIST_TIMEOUT_S`` or 600 s), so a rank that stops answering ends the job instead of hanging it.
    """
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return None
    rank, world_size, local_rank = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if timeout_s is None:
        timeout_s = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch_device = torch.device("cuda", local_rank)
        torch.cuda.set_device(torch_device)
    else:
        torch_device = torch.device("cpu")
        pin_to_core(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if cuda else "gloo",
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
            device_id=torch_device if cuda else None,
        )
    return DistributedContext(rank, world_size, local_rank, torch_device)


def pin_to_core(local_rank: int) -> int:
    """Pin this process to one core (``local_rank % cores``) and one torch thread; returns the core."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count()))
    core = cores[local_rank % len(cores)]
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)
    return core


def shutdown() -> None:
    """Destroy the process group if one was created (end of a distributed run)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def resolve_nproc(nproc: str | int, device: str) -> int:
    """``--nproc``: a positive number, or ``auto``: one process per GPU on CUDA, per usable core on CPU."""
    if str(nproc) == "auto":
        if torch.device(device).type == "cuda":
            return torch.cuda.device_count()
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if not str(nproc).isdigit():
        raise ConfigError(f"--nproc must be a number or 'auto', got '{nproc}'")
    value = int(nproc)
    if value < 1:
        raise ConfigError(f"--nproc must be >= 1 or 'auto', got {nproc}")
    return value


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """``python -m st_rl.utils.launcher --standalone --nproc_per_node <nproc> <argv>`` (one machine): torch's
    launcher, ``torch.distributed.run``, with a failed rank's report left to the rank (:mod:`st_rl.utils.launcher`)."""
    return [sys.executable, "-m", "st_rl.utils.launcher", "--standalone", f"--nproc_per_node={nproc}", *argv]


def strip_flag(argv: list[str], flag: str) -> list[str]:
    """``argv`` without ``flag VALUE`` / ``flag=VALUE`` (e.g. ``--nproc`` for the launched workers)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


_RANK_LINE = re.compile(r"^(?:error: )?\[rank \d+\] (.*)$")


class RankStderrFilter:
    """What :func:`launch` passes on from the ranks' stderr: every line, except an ``error: [rank N] MSG`` whose
    MSG another rank already printed (a config error is found by every rank), and, after an error line, the
    ``[rank N] interrupted`` of the ranks the launcher stopped because of it. The error stays the last line."""

    def __init__(self):
        self.errors: set[str] = set()

    def keep(self, line: str) -> bool:
        match = _RANK_LINE.match(line.rstrip("\n"))
        if match is None:
            return True
        message = match.group(1)
        if line.startswith("error: "):
            if message in self.errors:
                return False
            self.errors.add(message)
            return True
        return not (self.errors and message == "interrupted")


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``argv`` (a script and its arguments) as ``nproc`` processes through torch's launcher; its exit code.

    The ranks' stderr passes through :class:`RankStderrFilter`. SIGTERM / Ctrl-C reaching this process (as
    KeyboardInterrupt) is passed on to the launcher, which passes it to every rank (rank 0 saves a checkpoint),
    and the launcher is waited for.
    """
    proc = subprocess.Popen(torchrun_command(nproc, argv), stderr=subprocess.PIPE, text=True, bufsize=1)
    relay = threading.Thread(target=_relay_stderr, args=(proc.stderr, RankStderrFilter()), daemon=True)
    relay.start()
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        relay.join()
        raise
    relay.join()
    return code


def _relay_stderr(stream, keep: RankStderrFilter) -> None:
    for line in stream:
        if keep.keep(line):
            sys.stderr.write(line)
            sys.stderr.flush()

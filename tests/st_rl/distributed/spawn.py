"""Run a function on N gloo ranks on 127.0.0.1 (spawned processes), collecting each rank's result.

Each rank joins through :func:`st_rl.utils.distributed.init_distributed` with the variables torchrun
would set, so the code under test is the one a ``torchrun`` job runs.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import socket
import traceback
from collections.abc import Callable
from typing import Any

from st_rl.utils import distributed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(fn: Callable, rank: int, world_size: int, port: int, results: mp.Queue, args: tuple) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank)
    )
    try:
        ctx = distributed.init_distributed("cpu", timeout_s=30)
        results.put((rank, None, fn(ctx, *args)))
    except BaseException:  # reported to the test, which fails with the rank's traceback
        results.put((rank, traceback.format_exc(), None))
    finally:
        distributed.shutdown()


def run_ranks(fn: Callable, *args: Any, world_size: int = 2, timeout: float = 60) -> list[Any]:
    """``[fn(ctx_0, *args), fn(ctx_1, *args), ...]``; raises if a rank fails or the job exceeds ``timeout`` s.

    ``fn`` must be a module-level function; results must be picklable (numpy arrays, not tensors).
    """
    # spawn, not fork: the test process may already run JAX threads, and forking those can deadlock.
    context = mp.get_context("spawn")
    results = context.Queue()
    port = free_port()
    procs = [
        context.Process(target=_rank_main, args=(fn, rank, world_size, port, results, args), daemon=True)
        for rank in range(world_size)
    ]
    for p in procs:
        p.start()
    out: dict[int, Any] = {}
    try:
        for _ in range(world_size):
            rank, error, value = results.get(timeout=timeout)
            if error is not None:
                raise AssertionError(f"rank {rank} failed:\n{error}")
            out[rank] = value
    except queue.Empty:
        raise AssertionError(
            f"ranks {sorted(set(range(world_size)) - set(out))} gave no result in {timeout} s"
        ) from None
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    return [out[rank] for rank in range(world_size)]

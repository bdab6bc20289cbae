"""Process set-up that must happen before jax is imported (the commands call it first thing)."""

import os

from st_rl.utils.distributed import launched_by_torchrun

# One XLA CPU thread per rank (each rank is pinned to one core).
XLA_SINGLE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def prepare_worker_environment() -> None:
    """Under torchrun, before jax is imported: single-threaded XLA on CPU, JAX sees only this rank's GPU.

    Both settings are harmless on the other kind of device; a no-op outside torchrun.
    """
    if not launched_by_torchrun():
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {XLA_SINGLE_THREAD_FLAGS}".strip()
    os.environ.setdefault("JAX_CUDA_VISIBLE_DEVICES", os.environ["LOCAL_RANK"])

"""A guard that fails on host syncs: torch calls that wait for the device to hand a value to Python."""

from collections.abc import Iterator
from contextlib import contextmanager

import jax
import torch
from torch.overrides import TorchFunctionMode

SYNCING_METHODS = frozenset({"__bool__", "__int__", "__float__", "__index__", "item", "tolist", "nonzero"})


class _RefuseHostSyncs(TorchFunctionMode):
    """Intercepts every torch call (tensor methods too) without touching ``torch.Tensor`` itself: patching the class
    and putting the methods back left Python-level slots behind that changed torch afterwards (torch.onnx.export
    then failed on 0-d tensors, "len() of a 0-d tensor")."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in SYNCING_METHODS:
            raise AssertionError(f"host sync: Tensor.{name}")
        if name == "__getitem__" and len(args) > 1:
            index = args[1]
            items = index if isinstance(index, tuple) else (index,)
            if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items):
                raise AssertionError("host sync: boolean-mask indexing")
        return func(*args, **(kwargs or {}))


@contextmanager
def forbid_host_syncs() -> Iterator[None]:
    """Within the block, ``bool()``/``int()``/``float()`` of a tensor, ``item``, ``tolist``, ``nonzero`` and
    boolean-mask indexing raise AssertionError (on a GPU each is a host sync), as does any JAX device-to-host
    transfer. On the CPU none of them costs anything, so this is how a CPU test sees them."""
    with _RefuseHostSyncs(), jax.transfer_guard_device_to_host("disallow"):
        yield

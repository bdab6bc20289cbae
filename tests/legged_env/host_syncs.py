"""A guard that fails on host syncs: torch calls that wait for the device to hand a value to Python."""

from collections.abc import Iterator
from contextlib import contextmanager

import jax
import torch

SYNCING_METHODS = ("__bool__", "__int__", "__float__", "__index__", "item", "tolist", "nonzero")


@contextmanager
def forbid_host_syncs() -> Iterator[None]:
    """Within the block, ``bool()``/``int()``/``float()`` of a tensor, ``item``, ``tolist``, ``nonzero`` and
    boolean-mask indexing raise AssertionError (on a GPU each is a host sync), as does any JAX device-to-host
    transfer. On the CPU none of them costs anything, so this is how a CPU test sees them."""
    originals = {name: getattr(torch.Tensor, name) for name in SYNCING_METHODS}
    getitem = torch.Tensor.__getitem__

    def refuse(name: str):
        def refused(*args, **kwargs):
            raise AssertionError(f"host sync: Tensor.{name}")

        return refused

    def checked_getitem(self, index):
        items = index if isinstance(index, tuple) else (index,)
        if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items):
            raise AssertionError("host sync: boolean-mask indexing")
        return getitem(self, index)

    try:
        for name in SYNCING_METHODS:
            setattr(torch.Tensor, name, refuse(name))
        torch.Tensor.__getitem__ = checked_getitem
        with jax.transfer_guard_device_to_host("disallow"):
            yield
    finally:
        for name, method in originals.items():
            setattr(torch.Tensor, name, method)
        torch.Tensor.__getitem__ = getitem

"""Atomic file writes: a kill or crash never leaves a half-written checkpoint or export."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from typing import Any


def atomic_write(path: str, write_fn: Callable[[str], None]) -> None:
    """Call ``write_fn(tmp_path)`` on a temporary file next to ``path``, then rename it onto ``path``.

    The rename (``os.replace``) is atomic within a directory, so ``path`` is either the old file or
    the complete new one. The temporary file is removed if writing fails (including KeyboardInterrupt).
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(fd)
    # mkstemp creates the file 0600; give the result the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        write_fn(tmp_path)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def atomic_write_json(path: str, data: Any) -> None:
    """Write ``data`` as indented JSON atomically (tuples become lists, arrays ``tolist()``, others ``str``)."""

    def write(tmp_path: str) -> None:
        with open(tmp_path, "w") as f:
            json.dump(data, f, indent=2, default=_json_default)
            f.write("\n")

    atomic_write(path, write)

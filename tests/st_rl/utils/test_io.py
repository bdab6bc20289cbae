import os
from pathlib import Path

import pytest

from st_rl.utils.io import atomic_write, atomic_write_json


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    atomic_write(str(path), lambda tmp: Path(tmp).write_bytes(b"one"))
    atomic_write(str(path), lambda tmp: Path(tmp).write_bytes(b"two"))
    assert path.read_bytes() == b"two"
    assert os.listdir(path.parent) == ["f.bin"]


def test_failed_write_keeps_old_file_and_removes_temp(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def fail(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(str(path), fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_atomic_write_json_handles_tuples(tmp_path):
    atomic_write_json(str(tmp_path / "c.json"), {"shape": (1, 2)})
    assert (tmp_path / "c.json").read_text().replace(" ", "").replace("\n", "") == '{"shape":[1,2]}'

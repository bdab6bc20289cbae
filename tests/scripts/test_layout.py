"""train.py's process layout: what runs without --nproc and what the start line says (cli.training_layout)."""

import os

import pytest

from legged_rl import cli
from st_rl.utils.config import ConfigError


@pytest.fixture
def cores(monkeypatch):
    def set_cores(n: int) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n)), raising=False)

    return set_cores


@pytest.mark.parametrize(
    ("num_cores", "num_envs", "expected"),
    [
        (2, 1024, 2),  # the default walk: 2 x 512
        (2, 512, 2),  # 2 x 256, the smallest share that gets its own process
        (2, 500, 1),  # 2 x 250: too few per process
        (2, 16, 1),  # tests and debugging runs stay in one process
        (1, 1024, 1),
        (3, 1024, 2),  # 1024 does not split in 3: 2 x 512
        (4, 1024, 4),
        (8, 1024, 4),  # 8 x 128 is too few each: 4 x 256
    ],
)
def test_cpu_default_is_one_pinned_process_per_core_with_enough_envs_each(cores, num_cores, num_envs, expected):
    cores(num_cores)
    nproc, line = cli.training_layout(None, "cpu", num_envs)
    assert nproc == expected
    if expected > 1:
        assert line.startswith(f"layout: {expected} processes x {num_envs // expected} envs on {num_cores} cores")
        assert "pinned" in line and "--nproc 1 for one process" in line
    else:
        assert line.startswith(f"layout: 1 process, {num_envs} envs") and "--nproc N" in line


def test_nproc_flag_overrides_the_default(cores):
    cores(2)
    expected = "layout: 1 process (--nproc 1), pinned to one core with 1 torch and 1 XLA thread"
    assert cli.training_layout("1", "cpu", 1024) == (1, expected)
    assert cli.training_layout("auto", "cpu", 16)[0] == 2
    with pytest.raises(ConfigError, match="--nproc must be"):
        cli.training_layout("two", "cpu", 1024)


def test_accelerator_default_is_one_process():
    nproc, line = cli.training_layout(None, "cuda", 4096)
    assert nproc == 1 and "--nproc N|auto" in line

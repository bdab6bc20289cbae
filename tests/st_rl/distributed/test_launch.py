import os
import sys

import pytest

from legged_rl.launch import prepare_worker_environment
from st_rl.utils import distributed
from st_rl.utils.config import ConfigError


def test_strip_flag_removes_the_flag_in_both_spellings_only():
    argv = ["scripts/train.py", "--nproc", "2", "--num_envs", "16", "--nproc=auto", "--nprocs_other", "1"]
    assert distributed.strip_flag(argv, "--nproc") == ["scripts/train.py", "--num_envs", "16", "--nprocs_other", "1"]


def test_resolve_nproc():
    assert distributed.resolve_nproc("3", "cpu") == 3
    assert distributed.resolve_nproc("auto", "cpu") == len(os.sched_getaffinity(0))
    for bad in ("0", "two", "-1"):
        with pytest.raises(ConfigError, match="--nproc"):
            distributed.resolve_nproc(bad, "cpu")


def test_torchrun_command_is_torchs_launcher_on_one_machine():
    cmd = distributed.torchrun_command(2, ["scripts/train.py", "--task=walk"])
    assert cmd == [
        sys.executable, "-m", "st_rl.utils.launcher", "--standalone", "--nproc_per_node=2", "scripts/train.py",
        "--task=walk",
    ]  # fmt: skip


def test_rank_stderr_filter_keeps_one_copy_of_an_error_and_drops_the_stopped_ranks_interrupts():
    keep = distributed.RankStderrFilter()
    lines = [
        "W1202 some warning\n",
        "\n",
        "[rank 0] interrupted\n",  # before any error: the user's Ctrl-C, kept
        "error: [rank 1] env.x must be one of a, b\n",
        "error: [rank 0] env.x must be one of a, b\n",  # the same error found by another rank
        "[rank 0] interrupted\n",  # stopped by the launcher because rank 1 failed
        "error: [rank 0] another problem\n",
    ]
    assert [line for line in lines if keep.keep(line)] == [
        "W1202 some warning\n", "\n", "[rank 0] interrupted\n", "error: [rank 1] env.x must be one of a, b\n",
        "error: [rank 0] another problem\n",
    ]  # fmt: skip


def test_single_process_initialises_nothing(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert distributed.init_distributed("cpu") is None
    assert not distributed.dist.is_initialized()
    monkeypatch.setenv("XLA_FLAGS", "--xla_foo=1")
    prepare_worker_environment()  # outside torchrun: no change
    assert os.environ["XLA_FLAGS"] == "--xla_foo=1"

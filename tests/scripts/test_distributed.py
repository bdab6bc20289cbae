"""Multi-process jobs end to end: scripts/train.py --nproc 2, and a failing or silent rank ending the job."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from tests.scripts.conftest import REPO, run_dirs, run_script

WORKER = REPO / "tests" / "scripts" / "distributed_worker.py"


def torchrun_worker(*args: str, timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER), *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=dict(os.environ))
    return proc, time.perf_counter() - start


@pytest.mark.timeout(90)
def test_a_rank_raising_ends_the_job_with_its_error():
    proc, _ = torchrun_worker("--fail_rank", "1", timeout=80)
    assert proc.returncode != 0
    assert "error: [rank 1] failed with RuntimeError: injected failure" in proc.stderr, proc.stderr[-3000:]


@pytest.mark.timeout(90)
def test_a_silent_rank_ends_the_job_after_the_collective_timeout():
    proc, seconds = torchrun_worker("--hang_rank", "1", "--timeout", "5", timeout=80)
    assert proc.returncode != 0
    assert "error: [rank 0] failed with" in proc.stderr, proc.stderr[-3000:]
    assert seconds < 60


@pytest.mark.timeout(180)
def test_train_with_two_processes_writes_one_run(tmp_path):
    proc = run_script(
        "train", "--task=walk", "--nproc", "2", "--num_envs", "16", "--max_iterations", "1", "--run_name", "two",
        log_root=tmp_path, timeout=170,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "16 envs (2 x 8)" in proc.stdout
    (run,) = run_dirs(tmp_path)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["num_envs_per_rank"] == 8 and cfg["env"]["num_envs"] == 16
    assert sorted(p.name for p in run.glob("model_*.pt")) == ["model_1.pt"]
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    assert torch.load(run / "model_1.pt", weights_only=True)["iter"] == 1


@pytest.mark.timeout(90)
def test_num_envs_not_divisible_by_processes_is_an_error(tmp_path):
    proc = run_script("train", "--task=walk", "--nproc", "2", "--num_envs", "15", log_root=tmp_path, timeout=60)
    assert proc.returncode != 0
    assert "not divisible by 2 processes" in proc.stderr, proc.stderr[-3000:]
    assert not (tmp_path / "walk").exists()

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
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the CPU default runs one process per core")
def test_train_by_default_on_cpu_runs_two_processes_and_writes_one_run(tmp_path):
    """No --nproc: on a 2-core CPU 512 envs train as 2 pinned processes x 256 (the default layout), one run dir."""
    proc = run_script(
        "train", "--task=walk", "--num_envs", "512", "--max_iterations", "1", "--run_name", "two",
        "--set", "runner.num_steps_per_env=2", log_root=tmp_path, timeout=170,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[0].startswith("layout: 2 processes x 256 envs"), proc.stdout[:500]
    assert "512 envs (2 x 256)" in proc.stdout
    (run,) = run_dirs(tmp_path)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["world_size"] == 2 and cfg["num_envs_per_rank"] == 256 and cfg["env"]["num_envs"] == 512
    assert sorted(p.name for p in run.glob("model_*.pt")) == ["model_1.pt"]
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    assert torch.load(run / "model_1.pt", weights_only=True)["iter"] == 1


@pytest.mark.timeout(90)
def test_num_envs_not_divisible_by_processes_is_an_error(tmp_path):
    proc = run_script("train", "--task=walk", "--nproc", "2", "--num_envs", "15", log_root=tmp_path, timeout=60)
    assert proc.returncode != 0
    assert "not divisible by 2 processes" in proc.stderr, proc.stderr[-3000:]
    assert not (tmp_path / "walk").exists()

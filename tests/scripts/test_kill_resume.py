"""kill -9 of a real training run: no handler runs, yet every checkpoint on disk is whole, at most the save interval
is lost, and --resume continues from the last one with its env state."""

import subprocess
import sys

import pytest
import torch

from st_rl.utils.checkpoint import read_checkpoint
from tests.scripts.conftest import REPO, run_dirs, run_script

pytestmark = pytest.mark.timeout(420)

SAVE_INTERVAL = 2
WALK = ("--task=walk", "--num_envs", "16")  # the shared test run's config: its compiled step is cached


def test_kill_9_loses_at_most_the_save_interval_and_resume_continues(tmp_path):
    root = tmp_path / "logs"
    cmd = [sys.executable, str(REPO / "scripts" / "train.py"), *WALK, "--max_iterations", "1000",
           "--set", f"runner.save_interval={SAVE_INTERVAL}", "--log_root", str(root)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # wait for five finished iterations
            if line.startswith("it 5/"):
                break
        proc.kill()  # SIGKILL
        proc.wait(timeout=60)
    finally:
        proc.kill()
    (run,) = run_dirs(root)
    saved = sorted(int(p.name[len("model_") : -len(".pt")]) for p in run.glob("model_*.pt"))
    assert saved[-1] >= 5 - SAVE_INTERVAL and saved == list(range(SAVE_INTERVAL, saved[-1] + 1, SAVE_INTERVAL))
    for it in saved:  # every checkpoint on disk is complete and carries its resume state
        checkpoint = read_checkpoint(str(run / f"model_{it}.pt"), torch.device("cpu"))
        assert checkpoint["iter"] == it and checkpoint["resume"]["ranks"][0]["per_env"]

    proc = run_script("train", *WALK, "--resume", "--load_run", run.name, "--max_iterations", "1", log_root=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resumed from {run / f'model_{saved[-1]}.pt'} at iteration {saved[-1]}" in proc.stdout
    resumed = [d for d in run_dirs(root) if d != run]
    assert len(resumed) == 1 and (resumed[0] / f"model_{saved[-1] + 1}.pt").exists()

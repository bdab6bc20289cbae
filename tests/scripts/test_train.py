"""scripts/train.py end to end: the run directory it writes, and resuming from it."""

import json
import signal
import subprocess
import sys

import pytest
import torch

from tests.scripts.conftest import REPO, RUN_NAME, run_dirs, run_script, snapshot

pytestmark = pytest.mark.timeout(300)


def test_train_writes_a_complete_run_directory(trained_root):
    (run,) = run_dirs(trained_root)
    assert run.name.endswith(f"_{RUN_NAME}")
    cfg = json.loads((run / "config.json").read_text())
    assert {"env", "policy", "algorithm", "runner"} <= set(cfg)
    # Fully resolved: file values, CLI flags and defaults the YAML never mentions.
    assert cfg["env"]["num_envs"] == 16 and cfg["env"]["sim_dt"] == 0.005
    assert cfg["runner"]["max_iterations"] == 2 and cfg["runner"]["save_interval"] == 1 and cfg["runner"]["seed"] == 1
    assert cfg["algorithm"]["class_name"] == "PPO" and cfg["policy"]["actor_hidden_dims"] == [256, 128, 64]
    assert cfg["num_obs"] == sum(s[0] for s in cfg["obs_segments"].values())
    assert sorted(p.name for p in run.glob("model_*.pt")) == ["model_1.pt", "model_2.pt"]
    assert list(run.glob("events.out.tfevents.*"))
    ckpt = torch.load(run / "model_2.pt", weights_only=True)
    assert ckpt["iter"] == 2 and ckpt["num_obs"] == cfg["num_obs"]


def test_resume_continues_at_the_next_iteration_in_a_new_run(logs):
    (first,) = run_dirs(logs)
    before = snapshot(first)
    proc = run_script(
        "train", "--task=walk", "--num_envs", "16", "--resume", "--load_run", "-1", "--max_iterations", "1",
        "--run_name", "resumed", log_root=logs,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "model_2.pt at iteration 2" in proc.stdout
    runs = run_dirs(logs)
    assert len(runs) == 2 and runs[0] == first and runs[1].name.endswith("_resumed")
    assert sorted(p.name for p in runs[1].glob("model_*.pt")) == ["model_3.pt"]
    assert torch.load(runs[1] / "model_3.pt", weights_only=True)["iter"] == 3
    runner_cfg = json.loads((runs[1] / "config.json").read_text())["runner"]
    assert runner_cfg["resume"] is True and runner_cfg["load_run"] == "-1" and runner_cfg["checkpoint"] == -1
    assert snapshot(first) == before  # the run resumed from is left alone


def test_sigterm_saves_a_checkpoint_then_exits(tmp_path):
    """SIGTERM (a scheduler's or `kill`'s stop) is handled like Ctrl-C: the completed iterations are saved."""
    root = tmp_path / "logs"
    cmd = [sys.executable, str(REPO / "scripts" / "train.py"), "--task=walk", "--num_envs", "16",
           "--max_iterations", "1000", "--set", "runner.save_interval=1000", "--log_root", str(root)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # wait for two finished iterations
            if line.startswith("it 2/"):
                break
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    (run,) = run_dirs(root)
    saved = [p.name for p in run.glob("model_*.pt")]
    assert len(saved) == 1 and int(saved[0][len("model_") : -len(".pt")]) >= 2, saved
    assert not list(run.glob(".*.tmp"))

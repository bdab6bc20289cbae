"""scripts/ on the climb task: soft-obstacle training, --init_from (soft -> hard and walk -> climb), play's
per-height metrics, and the climb mutex played and exported from configs/climb_mutex.yaml."""

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.legged_env.envs import CLIMB_SETS, SOFT_SETS, climb_config, set_args
from tests.scripts.conftest import REPO, run_dirs, run_script

pytestmark = pytest.mark.timeout(900)

TINY = ["--num_envs", "8", "--max_iterations", "1", "--set", "runner.num_steps_per_env=8"]
# The --set items of tests/legged_env's climb envs (envs.climb_config): the runs here train on hard_env's (8 envs) and
# soft_env's (4 envs) configs, whose resets and steps a whole-suite run has compiled in-process (test_climb.py) into
# the persistent cache; the mutex play takes them too, so both play tests play one config (one compile).
CLIMB = set_args(CLIMB_SETS)


def recorded_env(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())["env"]


def test_soft_and_hard_runs_record_their_obstacle_mode(climb_root):
    soft, hard = run_dirs(climb_root, "climb")
    assert recorded_env(soft)["terrain"]["virtual_obstacles"] is True
    assert recorded_env(hard)["terrain"]["virtual_obstacles"] is False
    assert (soft / "model_0.pt").is_file() and (hard / "model_1.pt").is_file()
    # the runs' envs are soft_env's and hard_env's (so a whole-suite run compiles each once)
    assert recorded_env(soft) == json.loads(json.dumps(climb_config(4, *SOFT_SETS)))
    assert recorded_env(hard) == json.loads(json.dumps(climb_config(8)))


def test_init_from_a_walk_run_remaps_the_shared_segments(climb_root, tmp_path):
    (walk_run,) = run_dirs(climb_root, "walk")
    # the weights are loaded (and the report printed) before training: 0 iterations, no step
    args = ["--num_envs", "8", "--max_iterations", "0", "--set", "runner.num_steps_per_env=8", *CLIMB]
    proc = run_script("train", "--task=climb", *args, "--init_from", str(walk_run), log_root=tmp_path / "logs")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # walk's proprioceptive statistics are copied by name; the climb-only segments start fresh
    line = next(x for x in proc.stdout.splitlines() if "remapped actor_obs_normalizer._mean" in x)
    assert "copied base_lin_vel" in line
    new = line[line.index("new ") :]
    assert all(name in new for name in ("base_rpy", "wall_distance", "engaging_block", "height_scan"))


def test_init_from_errors_are_one_line(tmp_path):
    proc = run_script("train", "--task=climb", *TINY, "--init_from", str(tmp_path), log_root=tmp_path / "logs")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: --init_from") and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "logs").exists()  # failed before building anything


def test_play_reports_success_per_obstacle_height(climb_root):
    proc = run_script(
        "play", "--task=climb", "--load_run", "-1", "--num_episodes", "10", "--set", "env.episode_length_s=2.0",
        log_root=climb_root, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run_dirs(climb_root, "climb")[-1] / "play_metrics.json").read_text())
    assert metrics["env_overrides"][2:4] == ["env.terrain.init_level=spread", "env.terrain.curriculum=false"]
    buckets = metrics["by_obstacle_height"]
    # spread levels: 10 episodes over 10 levels, one per height from 0.05 to 0.45 m
    assert [b["level"] for b in buckets.values()] == list(range(10))
    assert float(min(buckets)) == pytest.approx(0.05) and float(max(buckets)) == pytest.approx(0.45)
    assert all(b["episodes"] == 1 for b in buckets.values())
    assert metrics["obstacles_per_track"] == 4
    assert 0.0 <= metrics["success_rate"] <= 1.0 and 0.0 <= metrics["obstacles_cleared_per_episode"] <= 4.0
    rates = [b["fall_rate"] for b in buckets.values()]
    assert metrics["fall_rate"] == pytest.approx(sum(rates) / len(rates))


def _mutex_config(tmp_path: Path, paths: list[str]) -> Path:
    cfg = yaml.safe_load((REPO / "configs" / "climb_mutex.yaml").read_text())
    cfg["policy"]["sub_policy_paths"] = paths
    path = tmp_path / "mutex.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_mutex_plays_and_exports_as_one_module(climb_root, tmp_path):
    (walk_run,) = run_dirs(climb_root, "walk")
    config = _mutex_config(tmp_path, [str(walk_run), str(climb_root / "climb"), str(climb_root / "climb")])
    # the climb runs' env (CLIMB) under play's conditions: the env test_play_reports_success_per_obstacle_height plays
    proc = run_script(
        "play", "--task=climb", "--config", str(config), "--num_episodes", "10", "--set", "env.episode_length_s=2.0",
        *CLIMB, log_root=tmp_path / "logs", timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out,) = run_dirs(tmp_path / "logs", "climb_mutex")
    metrics = json.loads((out / "play_metrics.json").read_text())
    assert len(metrics["by_obstacle_height"]) == 10 and metrics["checkpoint"] is None
    fractions = metrics["sub_policy_step_fraction"]
    assert len(fractions) == 3 and sum(fractions) == pytest.approx(1.0)
    # the experiment directory stood for its latest run, recorded resolved
    recorded = json.loads((out / "config.json").read_text())["policy"]["sub_policy_paths"]
    assert recorded[1] == str(run_dirs(climb_root, "climb")[-1])
    proc = run_script("export", "--task=climb", "--config", str(config), log_root=tmp_path / "logs")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"max abs diff vs eager act_inference, sequence with resets: TorchScript 0\b", proc.stdout)
    onnx_diff = float(re.search(r"ONNX ([0-9.e+-]+)\)", proc.stdout).group(1))
    exported = [p for p in (tmp_path / "logs" / "climb_mutex").rglob("policy.pt")]
    assert onnx_diff <= 1e-5 and all(p.with_suffix(".onnx").is_file() for p in exported)
    assert len(exported) == 1
    meta = json.loads((exported[0].parent / "policy.json").read_text())
    assert [s["name"] for s in meta["obs_segments"]][-2:] == ["engaging_block", "height_scan"]


def test_mutex_with_a_missing_run_is_a_one_line_error(tmp_path):
    config = _mutex_config(tmp_path, [str(tmp_path / "nope"), str(tmp_path / "nope"), str(tmp_path / "nope")])
    proc = run_script("play", "--task=climb", "--config", str(config), "--num_episodes", "2", log_root=tmp_path)
    assert proc.returncode == 2
    assert "sub-policy 0" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_training_a_mutex_is_refused(tmp_path):
    config = _mutex_config(tmp_path, ["a", "b", "c"])
    proc = run_script("train", "--task=climb", "--config", str(config), *TINY, log_root=tmp_path / "logs")
    assert proc.returncode == 2
    assert "not trained" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1

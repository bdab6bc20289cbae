"""scripts/sim2sim.py as the plain-MuJoCo referee: a briefly trained climb run and the shared walk run, exported and
run in both physics, write ``sim2sim_metrics.json``; bad input is one ``error:`` line."""

import json
import shutil
from pathlib import Path

import pytest

from tests.scripts.conftest import run_dirs, run_script

pytestmark = pytest.mark.timeout(900)

CLIMB_KEYS = {
    "success_rate", "obstacles_cleared_per_episode", "obstacles_per_track", "fall_rate", "by_obstacle_height",
    "non_foot_contacts", "non_foot_contact_steps_fraction", "max_body_penetration_m", "max_penetration_m",
}  # fmt: skip
HEIGHT_KEYS = {"level", "episodes", "success_rate", "obstacles_cleared", "fall_rate", "non_foot_contacts"}


@pytest.fixture(scope="module")
def climb_run(climb_root, tmp_path_factory) -> Path:
    """A copy of the shared climb log root (tests/scripts/conftest.py) with its hard run (1 iteration on
    tests/legged_env's hard_env config) exported."""
    root = tmp_path_factory.mktemp("sim2sim_climb") / "logs"
    shutil.copytree(climb_root, root)
    proc = run_script("export", "--task=climb", "--load_run", "-1", log_root=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def _metrics(root: Path, experiment: str) -> dict:
    return json.loads((run_dirs(root, experiment)[-1] / "sim2sim_metrics.json").read_text())


@pytest.mark.parametrize("physics", ["referee", "training"])
def test_climb_sim2sim_writes_plays_metrics(climb_run, physics):
    args = ["--load_run", "-1", "--num_episodes", "3", "--physics", physics, "--set", "env.episode_length_s=1"]
    proc = run_script("sim2sim", "--task=climb", *args, log_root=climb_run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = _metrics(climb_run, "climb")
    assert json.loads(proc.stdout) == metrics
    assert CLIMB_KEYS <= set(metrics) and metrics["physics"] == physics and metrics["num_episodes"] == 3
    assert metrics["env_overrides"] == ["env.episode_length_s=1"] and metrics["mean_episode_length_s"] <= 1.0 + 1e-9
    assert metrics["obstacles_per_track"] == 4
    buckets = metrics["by_obstacle_height"]
    assert list(buckets) == ["0.050", "0.094", "0.139"] and [b["level"] for b in buckets.values()] == [0, 1, 2]
    for m in (metrics, *buckets.values()):
        assert 0.0 <= m["success_rate"] <= 1.0 and 0.0 <= m["fall_rate"] <= 1.0
        assert 0.0 <= m["non_foot_contact_steps_fraction"] <= 1.0
        assert 0.0 <= m["max_body_penetration_m"] <= m["max_penetration_m"] < 0.05
    assert all(HEIGHT_KEYS <= set(b) and b["episodes"] == 1 for b in buckets.values())
    assert 0.0 <= metrics["obstacles_cleared_per_episode"] <= 4.0 and metrics["wall_s_per_episode"] > 0


def test_walk_sim2sim_writes_its_metrics(logs):
    assert run_script("export", "--task=walk", "--load_run", "-1", log_root=logs).returncode == 0
    args = ("--load_run", "-1", "--seconds", "1.5", "--command", "0.5,0,0", "--command", "0,0,0.5")
    proc = run_script("sim2sim", "--task=walk", *args, log_root=logs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = _metrics(logs, "walk")
    assert json.loads(proc.stdout) == metrics["commands"]  # stdout: the per-command list, as before
    assert metrics["physics"] == "referee" and [c["command"] for c in metrics["commands"]] == [[0.5, 0, 0], [0, 0, 0.5]]
    for c in metrics["commands"]:
        assert {"lin_vel_x", "lin_vel_y", "yaw_rate", "fell", "non_foot_contacts", "max_penetration_m"} <= set(c)
        assert 0 <= c["non_foot_contacts"] <= c["steps"] <= 75 and 0.0 <= c["max_penetration_m"] < 0.05


def test_sim2sim_bad_input_is_one_error_line(climb_run, tmp_path):
    root = tmp_path / "logs"
    shutil.copytree(climb_run, root)
    cases = [
        (("--command", "0.5,0,0"), "--command is for walk"),
        (("--set", "env.episode_lenght_s=1"), "episode_lenght_s"),
    ]
    (run_dirs(root, "climb")[-1] / "sim2sim_metrics.json").unlink(missing_ok=True)  # from the tests above
    meta_path = run_dirs(root, "climb")[-1] / "exported" / "policy.json"
    meta = json.loads(meta_path.read_text())
    meta["obs_segments"].append(
        {"name": "forward_depth", "shape": [1, 2, 2], "start": meta["num_obs"], "scale": [1.0] * 4}
    )
    for args, needle in [*cases, ((), "forward_depth")]:
        if needle == "forward_depth":
            meta_path.write_text(json.dumps(meta))
        proc = run_script("sim2sim", "--task=climb", "--load_run", "-1", *args, log_root=root)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], lines
    assert not (run_dirs(root, "climb")[-1] / "sim2sim_metrics.json").exists()

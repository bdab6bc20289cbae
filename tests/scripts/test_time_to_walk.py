"""benchmark.py --time_to_walk's bookkeeping (legged_rl.time_to_walk): which checkpoint first walks, and its figures."""

import os

from legged_rl import time_to_walk as ttw

GOOD = {"lin_vel_x_rms": 0.1, "lin_vel_y_rms": 0.1, "yaw_rate_rms": 0.1, "fall_rate": 0.0}


def _ckpts(tmp_path, iterations, start=1000.0):
    out = []
    for it in iterations:
        path = tmp_path / f"model_{it}.pt"
        path.write_bytes(b"")
        os.utime(path, (start + 10 * it, start + 10 * it))  # written 10 s per iteration after the start
        out.append((it, str(path)))
    return out


def test_the_first_checkpoint_meeting_every_set_counts(tmp_path):
    ckpts = _ckpts(tmp_path, [25, 50, 75, 100])
    # Forward walking from 50 on; turning in place only from 100 on (the joystick set passes from 75).
    table = {
        (25, "forward"): {**GOOD, "lin_vel_x_rms": 0.4},
        (50, "joystick"): {**GOOD, "yaw_rate_rms": 0.5},
        (75, "turn_in_place"): {**GOOD, "fall_rate": 0.06},
    }
    calls = []

    def evaluate(it, name):
        calls.append((it, name))
        return table.get((it, name), GOOD)

    forward, _ = ttw.first_meeting(evaluate, ckpts, ttw.FORWARD)
    assert ckpts[forward][0] == 50
    joystick, log = ttw.first_meeting(evaluate, ckpts, ttw.JOYSTICK, start_index=forward)
    assert ckpts[joystick][0] == 100
    # A checkpoint failing one set is not evaluated on the others: 50 stops at joystick, 75 at turn_in_place.
    assert calls[2:] == [(50, "joystick"), (75, "joystick"), (75, "turn_in_place"), (100, "joystick"),
                         (100, "turn_in_place")]  # fmt: skip
    assert [e["passed"] for e in log] == [False, True, False, True, True]
    assert log[0]["yaw_rate_rms"] == 0.5 and set(log[0]) == {"iteration", "criteria", "passed", *GOOD}
    figures = ttw.figures(joystick, ckpts, start=1000.0, steps_per_iteration=24 * 1024)
    assert figures == {"time_to_walk_s": 1000.0, "env_steps_to_walk": 100 * 24 * 1024, "iteration": 100}


def test_thresholds_are_strict_upper_bounds_and_never_met_gives_none(tmp_path):
    ckpts = _ckpts(tmp_path, [10, 20])
    assert not ttw.meets({**GOOD, "fall_rate": 0.05}, ttw.FORWARD["forward"][1])  # falls < 5%, not <=
    assert ttw.meets({**GOOD, "fall_rate": 0.04}, ttw.FORWARD["forward"][1])
    index, log = ttw.first_meeting(lambda it, name: {**GOOD, "lin_vel_x_rms": 0.3}, ckpts, ttw.FORWARD)
    assert index is None and len(log) == 2
    assert ttw.figures(None, ckpts, 0.0, 1) == {"time_to_walk_s": None, "env_steps_to_walk": None, "iteration": None}


def test_checkpoints_are_listed_in_iteration_order(tmp_path):
    for name in ("model_100.pt", "model_25.pt", "model_5.pt", "model_x.pt", "other.pt"):
        (tmp_path / name).write_bytes(b"")
    assert [it for it, _ in ttw.checkpoints(str(tmp_path))] == [5, 25, 100]


def test_the_timed_command_is_the_default_one_with_checkpoints_every_eval_every(tmp_path):
    cmd = ttw.train_command("walk", 3, str(tmp_path), 25, ["--set", "algorithm.learning_rate=5e-4"])
    assert cmd[1:] == ["-m", "legged_rl.commands.train", "--task=walk", "--seed", "3", "--log_root", str(tmp_path),
                       "--run_name", "time_to_walk", "--set", "runner.save_interval=25", "--set",
                       "algorithm.learning_rate=5e-4"]  # fmt: skip
    assert "--nproc" not in cmd  # train.py picks its own layout


def test_train_checkout_puts_the_other_checkouts_packages_first(tmp_path, monkeypatch):
    import subprocess
    import sys

    import pytest

    from st_rl.utils.config import ConfigError

    assert ttw.checkout_options(None) == {}
    with pytest.raises(ConfigError, match="--train_checkout .* is not a checkout of this repo"):
        ttw.checkout_options(str(tmp_path))
    (tmp_path / "legged_rl" / "commands").mkdir(parents=True)
    (tmp_path / "legged_rl" / "__init__.py").write_text("")
    (tmp_path / "legged_rl" / "commands" / "__init__.py").write_text("")
    (tmp_path / "legged_rl" / "commands" / "train.py").write_text("print('the other checkout')\n")
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    options = ttw.checkout_options(str(tmp_path))
    assert options["env"]["PYTHONPATH"].split(os.pathsep) == [str(tmp_path), "/somewhere/else"]
    # Started from this repo's root (as benchmark.py is), the module and a script run as torchrun's ranks are
    # the other checkout's.
    cmd = ttw.train_command("walk", 1, "logs", 25, [])
    assert cmd[:3] == [sys.executable, "-m", "legged_rl.commands.train"]
    assert os.path.isabs(cmd[cmd.index("--log_root") + 1])
    rank = tmp_path / "elsewhere" / "rank.py"  # torchrun runs train.py as a script: its own directory first
    rank.parent.mkdir()
    rank.write_text("import legged_rl.commands.train\n")
    # --help: should this checkout's train.py run instead, it prints its usage and exits (no training starts).
    for argv in ([*cmd[:3], "--help"], [sys.executable, str(rank)]):
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, **options)
        assert out.stdout.strip() == "the other checkout", out.stderr[-500:]


def _referee_result(command, reached, fell=False):
    return {"command": list(command), "lin_vel_x": reached[0], "lin_vel_y": reached[1], "yaw_rate": reached[2],
            "fell": fell}  # fmt: skip


def test_referee_summary_is_the_rms_over_commands_and_no_fall():
    commands = [(0.5, 0.0, 0.0), (0.0, 0.0, 1.0)]
    tracked = [_referee_result(c, (c[0] - 0.1, c[1] + 0.1, c[2] - 0.2)) for c in commands]
    out = ttw.referee_summary(tracked)
    assert (out["lin_vel_x_rms"], out["lin_vel_y_rms"], out["yaw_rate_rms"]) == (0.1, 0.1, 0.2)
    assert out["falls"] == 0 and out["passed"]
    # Turning in place stalls (what sim2sim found before joint friction was in training): yaw RMS 0.72 fails.
    stalled = [tracked[0], _referee_result(commands[1], (0.0, 0.0, 0.0))]
    out = ttw.referee_summary(stalled)
    assert out["yaw_rate_rms"] == round(((0.2**2 + 1.0**2) / 2) ** 0.5, 4) and not out["passed"]
    fell = [tracked[0], _referee_result(commands[1], (float("nan"),) * 3, fell=True)]
    out = ttw.referee_summary(fell)
    assert out["falls"] == 1 and out["lin_vel_x_rms"] is None and not out["passed"]
    assert not ttw.referee_summary([tracked[0], {**tracked[1], "fell": True}])["passed"]  # a fall after settling


def test_eval_run_evaluates_a_run_whose_config_predates_todays_keys(logs):
    """``--eval_run`` on the shared 2-iteration walk run with keys added since removed from its config.json (as a run
    trained by an older checkout has it): the checkpoints are evaluated over today's defaults, nothing is trained."""
    import json

    from tests.scripts.conftest import run_dirs, run_script

    (run,) = run_dirs(logs)
    config = json.loads((run / "config.json").read_text())
    del config["env"]["proprio_latency_steps"], config["env"]["commands"]["turn_in_place_fraction"]
    (run / "config.json").write_text(json.dumps(config))
    args = ["--task=walk", "--time_to_walk", "--eval_run", str(run), "--eval_episodes", "2", "--repeats", "1"]
    proc = run_script("benchmark", *args, "--steps", "2", log_root=logs, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["train_command"] is None and out["clock_start"] == "config.json written (--eval_run)"
    assert out["iterations_trained"] == 2 and out["forward"]["iteration"] is None  # two iterations do not walk
    assert [(e["iteration"], e["criteria"]) for e in out["evaluations"][:2]] == [(1, "forward"), (2, "forward")]
    assert [p.name for p in run_dirs(logs)] == [run.name]  # no new run

"""Bad input to the scripts: one `error:` line naming the problem, non-zero exit, the log root untouched."""

import pytest

from tests.scripts.conftest import RUN_NAME, run_dirs, run_script, snapshot

pytestmark = pytest.mark.timeout(180)


def assert_one_error(proc, *names: str) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr[-3000:]
    for name in names:
        assert name in errors[0], (name, errors[0])
    return errors[0]


TRAIN = ("train", "--num_envs", "16", "--max_iterations", "1")


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (("train", "--task", "wlak"), ["'wlak'", "walk"]),
        ((*TRAIN, "--set", "env.comands.x=1"), ["'env.comands'", "--set env.comands.x=1", "'commands'"]),
        ((*TRAIN, "--set", "env.episode_length_s=abc"), ["'env.episode_length_s'", "abc"]),
        ((*TRAIN, "--set", "runner.max_iteration=3"), ["'runner.max_iteration'", "'max_iterations'"]),
        (("play", "--load_run", "nope", "--num_episodes", "4"), ["'nope'", f"_{RUN_NAME}"]),
        (("play", "--load_run", "-1", "--checkpoint", "7", "--num_episodes", "4"), ["7", "1, 2"]),
        (("export", "--load_run", "nope"), ["'nope'", f"_{RUN_NAME}"]),
    ],
    ids=["unknown_task", "unknown_key", "wrong_type", "unknown_runner_key", "no_run", "no_checkpoint", "export_no_run"],
)
def test_bad_arguments(logs, argv, names):
    before = snapshot(logs)
    proc = run_script(*argv, log_root=logs)
    assert_one_error(proc, *names)
    assert proc.returncode == 2
    assert snapshot(logs) == before


def test_bad_config_file_names_key_and_file(logs, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("env:\n  comands:\n    x: 1\n")
    before = snapshot(logs)
    proc = run_script("train", "--config", str(bad), "--max_iterations", "1", log_root=logs)
    assert_one_error(proc, "'env.comands'", str(bad))
    assert proc.returncode == 2 and snapshot(logs) == before


def test_corrupt_checkpoint(logs):
    (run,) = run_dirs(logs)
    (run / "model_5.pt").write_bytes(b"this is not a zip file" * 10)
    before = snapshot(logs)
    proc = run_script("export", "--load_run", "-1", log_root=logs)
    assert_one_error(proc, "model_5.pt", "corrupt")
    assert proc.returncode == 2 and snapshot(logs) == before


def test_checkpoint_that_does_not_fit_the_observation(logs):
    before = snapshot(logs)
    proc = run_script(
        "play", "--load_run", "-1", "--num_episodes", "4", "--set", "env.observations.actor.foot_contacts={}",
        log_root=logs,
    )  # fmt: skip
    assert_one_error(proc, "model_2.pt", "num_obs 52 (env) vs 48 (checkpoint)")
    assert proc.returncode == 2 and snapshot(logs) == before


def test_missing_log_root_is_an_error_not_a_crash(tmp_path):
    empty = tmp_path / "none"
    proc = run_script("play", "--load_run", "-1", log_root=empty)
    assert_one_error(proc, "no run directories")
    assert not empty.exists()

"""Bad input to the scripts: one `error:` line naming the problem, non-zero exit, the log root untouched."""

import os
import subprocess

import pytest

from legged_env.errors import ConfigError as EnvConfigError
from legged_env.tasks import TaskSpec
from legged_rl import cli
from st_rl.algorithms.ppo import PPO
from st_rl.modules import build_policy
from st_rl.utils.config import ConfigError
from tests.scripts.conftest import REPO, RUN_NAME, installed_command, run_dirs, run_script, snapshot
from tests.st_rl.dummy_env import PointMassEnv

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


# Every script with a bad value: one `error:` line naming the key (or flag) and the value, exit 2, no traceback,
# the log root untouched. Each fails before an env is compiled (flags in argparse, config values when the config
# is resolved), except the policy-constructor case, which reaches the constructor on purpose (after the env's
# reset compiles, from the cache after the first run).
BAD_VALUES = [
    # the three inputs of the report
    (("train", "--task=walk", "--set", "env.robot=go2"), ["env.robot", "--set env.robot=go2", "'go2'", "go1"]),
    ((*TRAIN, "--set", "algorithm.schedule=cosine"), ["algorithm.schedule", "'cosine'", "adaptive, fixed"]),
    (
        (*TRAIN, "--set", "policy.class_name=ActorCriticRecurrent", "--set", "policy.rnn_hidden_size=-4"),
        ["policy.rnn_hidden_size", "must be >= 1", "got -4"],
    ),
    # train: the other sections, the flags, a constructor's own check, a climb terrain value
    (
        (*TRAIN, "--set", "policy.class_name=ActorCriticRecurrent", "--set", "policy.rnn_type=rnn"),
        ["policy.rnn_type", "'rnn'", "gru, lstm"],
    ),
    ((*TRAIN, "--set", "policy.activation=relu6"), ["policy.class_name ActorCritic", "'relu6'", "elu"]),
    ((*TRAIN, "--set", "algorithm.num_mini_batches=0"), ["algorithm.num_mini_batches", "got 0"]),
    ((*TRAIN, "--set", "algorithm.num_mini_batches=1000"), ["algorithm.num_mini_batches 1000", "384 samples"]),
    ((*TRAIN, "--set", "runner.save_interval=0"), ["runner.save_interval", "got 0"]),
    (("train", "--num_envs", "0"), ["--num_envs", "'0'"]),
    (("train", "--num_envs", "-3"), ["--num_envs", "'-3'"]),
    (("train", "--num_envs", "16", "--max_iterations", "-1"), ["--max_iterations", "'-1'"]),
    ((*TRAIN, "--device", "gpu"), ["--device", "'gpu'"]),
    (("train", "--task=climb", "--set", "env.terrain.init_level=high"), ["env.terrain.init_level", "'high'"]),
    # the other scripts
    (("play", "--load_run", "-1", "--num_episodes", "0"), ["--num_episodes", "'0'"]),
    (("play", "--load_run", "-1", "--num_episodes", "4", "--set", "env.robot=go2"), ["env.robot", "'go2'"]),
    (("play", "--load_run", "-1", "--checkpoint", "-5"), ["--checkpoint", "'-5'"]),
    (("export", "--load_run", "-1", "--checkpoint", "-7"), ["--checkpoint", "'-7'"]),
    (("sim2sim", "--load_run", "-1", "--seconds", "-1"), ["--seconds", "'-1'"]),
    (("sim2sim", "--load_run", "-1", "--command", "1,2"), ["--command", "'1,2'", "vx,vy,yaw_rate"]),
    (("benchmark", "--sizes", "16,0"), ["--sizes", "'16,0'"]),
    (("benchmark", "--ppo_envs", "8", "--set", "algorithm.num_mini_batches=500"), ["--ppo_envs 8", "192 samples"]),
    (("record_motion", "--load_run", "-1", "--seconds", "0"), ["--seconds", "'0'"]),
    (
        ("benchmark", "--task=walk", "--time_to_walk", "--eval_run", "no/such/run"),
        ["--eval_run no/such/run", "no model_<iteration>.pt"],
    ),
]


@pytest.mark.parametrize(("argv", "names"), BAD_VALUES, ids=[" ".join(argv) for argv, _ in BAD_VALUES])
def test_bad_values(logs, argv, names):
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


def _raises(error: Exception):
    """A stand-in constructor (or method) that raises ``error``."""

    def fn(*args, **kwargs):
        raise error

    return fn


def _task_raising(error: Exception) -> TaskSpec:
    return TaskSpec("fake", _raises(error), dict, frozenset(), "fake.yaml")


TRAIN_CFG = {"policy": {}, "algorithm": {"class_name": "PPO"}, "runner": {}}


@pytest.mark.parametrize("command", ["train", "play", "export", "sim2sim", "benchmark"])
def test_installed_commands_read_the_packaged_recipes_from_any_directory(command, tmp_path):
    """``legged-rl-<command>`` from outside the repository: the recipe is the package's (its path is in the one
    error line), and nothing is written in the working directory."""
    cmd = [
        installed_command(command),
        "--task=walk",
        "--set",
        "runner.max_iteration=3",
        "--log_root",
        str(tmp_path / "l"),
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert proc.returncode == 2
    assert_one_error(proc, "'runner.max_iteration'", str(REPO / "legged_rl" / "configs" / "walk.yaml"))
    assert list(tmp_path.iterdir()) == []


def test_constructor_value_errors_become_config_errors_naming_the_section():
    """What a constructor rejects while building from the config is a ConfigError naming the section (one line in
    the scripts); the original error is kept as the cause."""
    with pytest.raises(ConfigError, match=r"^policy.class_name ActorCritic in my.yaml: unknown activation 'relu6'"):
        build_policy({"activation": "relu6"}, 4, 4, 2, source="my.yaml")
    with pytest.raises(EnvConfigError, match=r"^env of task fake in my.yaml: bad terrain") as info:
        cli.build_task(_task_raising(ValueError("bad terrain")), {"num_envs": 1}, 0, "my.yaml")
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(EnvConfigError, match=r"^env of task fake in my.yaml: wants a list"):
        cli.build_task(_task_raising(TypeError("wants a list")), {"num_envs": 1}, 0, "my.yaml")
    with pytest.MonkeyPatch.context() as mp, pytest.raises(ConfigError, match=r"^algorithm PPO in my.yaml: too small"):
        mp.setattr(PPO, "init_storage", _raises(ValueError("too small")))
        cli.build_runner(PointMassEnv(), TRAIN_CFG, None, "cpu", "my.yaml")


def test_other_constructor_errors_are_not_hidden():
    """Any other exception from a constructor is a bug: it keeps its type (and so its traceback in the scripts)."""
    with pytest.raises(KeyError, match="terrain"):
        cli.build_task(_task_raising(KeyError("terrain")), {"num_envs": 1}, 0, "my.yaml")
    with pytest.MonkeyPatch.context() as mp, pytest.raises(RuntimeError, match="a bug"):
        mp.setattr(PPO, "init_storage", _raises(RuntimeError("a bug")))
        cli.build_runner(PointMassEnv(), TRAIN_CFG, None, "cpu", "my.yaml")
    assert isinstance(cli.build_runner(PointMassEnv(), TRAIN_CFG, None, "cpu", "my.yaml").alg, PPO)

"""``runner.logger="wandb"``: every TensorBoard scalar also goes to Weights & Biases, with the same key and step.

A fake ``wandb`` module checks what the runner hands to W&B (keys, values, steps, run name, directory, config);
one real offline run checks what wandb itself writes under the run directory. wandb never writes outside the
test's directories: its directories (``WANDB_*_DIR``) and netrc point into ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from collections import defaultdict
from pathlib import Path

import pytest

from st_rl.runners import OnPolicyRunner
from st_rl.runners.logger import WANDB_MISSING
from st_rl.utils.config import ConfigError
from tests.st_rl.dummy_env import PointMassEnv
from tests.st_rl.runners.test_on_policy_runner import small_cfg

REPO = Path(__file__).resolve().parents[3]
RUN = "2024-01-01_12-00-00_wb"  # a run directory's name (what train.py makes)


@pytest.fixture
def wandb_env(tmp_path, monkeypatch) -> Path:
    """No credentials and every wandb directory under ``tmp_path``; ``WANDB_MODE`` unset (tests set it)."""
    for var in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE", "WANDB_BASE_URL", "WANDB_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "wandb_home"
    for var, sub in [("WANDB_DIR", "dir"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config")]:
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.setenv("WANDB_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("WANDB_ARTIFACT_DIR", str(home / "artifacts"))
    monkeypatch.setenv("NETRC", str(home / "netrc"))  # absent: no `wandb login` credentials
    return home


class FakeRun:
    def __init__(self, **kwargs) -> None:
        self.init_kwargs = kwargs
        self.logged: list[tuple[int, dict[str, float]]] = []
        self.finished = False

    def log(self, data: dict, step: int) -> None:
        assert not self.finished, "logged after finish()"
        self.logged.append((step, dict(data)))

    def finish(self) -> None:
        self.finished = True


@pytest.fixture
def fake_wandb(monkeypatch) -> types.ModuleType:
    module = types.ModuleType("wandb")
    module.runs = []

    def init(**kwargs):
        module.runs.append(FakeRun(**kwargs))
        return module.runs[-1]

    module.init = init
    monkeypatch.setitem(sys.modules, "wandb", module)
    return module


def tensorboard_scalars(log_dir: Path) -> dict[int, dict[str, float]]:
    """``step -> {tag: value}`` of the event files directly in ``log_dir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for tag in events.Tags()["scalars"]:
        for event in events.Scalars(tag):
            out[event.step][tag] = event.value
    return dict(out)


def train(log_dir: Path, **runner) -> OnPolicyRunner:
    cfg = small_cfg(experiment_name="point", **runner)
    runner = OnPolicyRunner(PointMassEnv(num_envs=8, max_episode_length=10), cfg, log_dir=str(log_dir))
    runner.learn(2, init_at_random_ep_len=True)
    return runner


def test_wandb_gets_every_tensorboard_scalar_with_its_key_and_step(tmp_path, wandb_env, fake_wandb, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    log_dir = tmp_path / RUN
    runner = train(log_dir, logger="wandb")
    (run,) = fake_wandb.runs
    tensorboard = tensorboard_scalars(log_dir)
    assert sorted(tensorboard) == [1, 2] and len(tensorboard[2]) >= 14  # TensorBoard is still written in full
    assert [step for step, _ in run.logged] == [1, 2]  # one call per iteration
    for step, scalars in run.logged:
        assert set(scalars) == set(tensorboard[step]), set(scalars) ^ set(tensorboard[step])
        assert scalars == pytest.approx(tensorboard[step], rel=1e-6)  # TensorBoard keeps float32
    kwargs = run.init_kwargs
    assert kwargs["name"] == RUN and kwargs["dir"] == str(log_dir) and kwargs["project"] == "point"
    assert kwargs["mode"] is None  # WANDB_MODE decides (wandb reads it)
    assert json.loads(json.dumps(kwargs["config"])) == json.loads((log_dir / "config.json").read_text())
    assert not run.finished  # learn() keeps the run open for another learn(); close() finishes it
    runner.close()
    assert run.finished


def test_wandb_without_credentials_or_mode_runs_offline_and_says_so(tmp_path, wandb_env, fake_wandb, capsys):
    train(tmp_path / RUN, logger="wandb", wandb_project="walk-sweep").close()
    (run,) = fake_wandb.runs
    assert run.init_kwargs["mode"] == "offline" and run.init_kwargs["project"] == "walk-sweep"
    lines = [line for line in capsys.readouterr().out.splitlines() if "offline" in line]
    assert len(lines) == 1 and lines[0].startswith("wandb: no API key") and "wandb sync" in lines[0], lines


def test_tensorboard_logger_and_runs_without_log_dir_never_start_wandb(tmp_path, wandb_env, fake_wandb):
    train(tmp_path / RUN).close()  # default: tensorboard
    runner = OnPolicyRunner(PointMassEnv(num_envs=4), small_cfg(logger="wandb"), log_dir=None)  # logs nothing
    runner.learn(1)
    runner.close()
    assert fake_wandb.runs == []


def test_unknown_logger_is_a_one_line_config_error():
    with pytest.raises(ConfigError) as e:
        OnPolicyRunner(PointMassEnv(num_envs=4), small_cfg(logger="mlflow"), log_dir=None)
    assert str(e.value) == "runner.logger in train_cfg must be one of tensorboard, wandb, got 'mlflow'"


def test_missing_wandb_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    with pytest.raises(ConfigError) as e:
        OnPolicyRunner(PointMassEnv(num_envs=4), small_cfg(logger="wandb"), log_dir=str(tmp_path / RUN))
    assert str(e.value) == WANDB_MISSING == '--logger wandb (runner.logger) needs wandb: pip install -e ".[wandb]"'
    assert not (tmp_path / RUN).exists()  # before anything was written


def wandb_records(path: Path):
    """The protobuf records of a ``run-<id>.wandb`` file: a 7-byte ``:W&B`` header, then LevelDB-log records
    (7-byte header: crc32c, length, type FULL/FIRST/MIDDLE/LAST) in 32 KiB blocks."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:7]
    pos, parts = 7, b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        if left < 7 or kind == 0:  # block trailer / padding
            pos += left
            continue
        parts += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            parts = b""
            yield record


def test_real_offline_wandb_run_under_the_run_directory(tmp_path, wandb_env, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    log_dir = tmp_path / RUN
    train(log_dir, logger="wandb").close()
    # finish() returns before wandb's service has written the run file; it is complete once the service stops,
    # as at the end of a training process.
    wandb.teardown()
    (run_file,) = log_dir.glob("wandb/offline-run-*/run-*.wandb")
    history: dict[int, set[str]] = {}
    run_records = []
    for record in wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            keys = {item.key or "/".join(item.nested_key) for item in record.history.item}
            history[record.history.step.num] = {k for k in keys if not k.startswith("_")}  # _step, _runtime, ...
        elif kind == "run":
            run_records.append(record.run)
    tensorboard = tensorboard_scalars(log_dir)
    assert sorted(history) == sorted(tensorboard) == [1, 2]
    for step, keys in history.items():
        assert keys == set(tensorboard[step]), keys ^ set(tensorboard[step])
    (run,) = run_records
    assert run.display_name == RUN and run.project == "point"
    assert {"policy", "algorithm", "runner", "env", "num_obs"} <= {item.key for item in run.config.update}
    assert not (log_dir.parent / "wandb").exists()  # everything is under the run directory (or WANDB_*_DIR)


# train.py --logger: subprocesses that stop before the env is built (a few seconds: the imports).
def train_script(*args: str, log_root: Path, hide_wandb: bool = False) -> subprocess.CompletedProcess:
    """scripts/train.py in a subprocess whose env bridge cannot be imported (building the env fails loudly), and
    with ``hide_wandb`` without wandb."""
    code = "import sys\nsys.modules['legged_rl.torch_vec_env'] = None\n"
    code += "sys.modules['wandb'] = None\n" if hide_wandb else ""
    code += "sys.argv = sys.argv[1:]\nimport runpy\nrunpy.run_path(sys.argv[0], run_name='__main__')\n"
    cmd = [sys.executable, "-c", code, str(REPO / "scripts" / "train.py"), *args, "--log_root", str(log_root)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, env=dict(os.environ))


def test_train_logger_flag_rejects_other_values_in_one_line(tmp_path):
    proc = train_script("--task=walk", "--logger", "mlflow", log_root=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: argument --logger: invalid choice: 'mlflow' (choose from 'tensorboard', 'wandb') "
        "(see train.py --help)"
    ]  # fmt: skip


def test_train_logger_wandb_without_wandb_stops_before_the_env_is_built(tmp_path):
    proc = train_script("--task=walk", "--logger", "wandb", log_root=tmp_path, hide_wandb=True)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [f"error: {WANDB_MISSING}"]
    assert not any(tmp_path.iterdir())  # no run directory

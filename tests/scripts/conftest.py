"""Subprocess runs of scripts/*.py and one tiny training run shared by the script tests.

The scripts run with this interpreter from the repo root and keep the default JAX compilation cache,
so they share compiled steps with each other and with earlier runs.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.legged_env.envs import CLIMB_SETS, SOFT_SETS, set_args

REPO = Path(__file__).resolve().parents[2]
RUN_NAME = "first"


def run_script(script: str, *args: str, log_root: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python scripts/<script>.py <args> --log_root <log_root>``, output captured as text."""
    cmd = [sys.executable, str(REPO / "scripts" / f"{script}.py"), *args, "--log_root", str(log_root)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


def installed_command(name: str) -> str:
    """Path of the console script ``legged-rl-<name>`` that ``pip install`` put next to this interpreter."""
    path = Path(sys.executable).parent / f"legged-rl-{name}"
    assert path.is_file(), f"{path} missing: install the package (pip install -e .) to get the commands"
    return str(path)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """``relative path -> (size, mtime_ns)`` of every file and directory under ``root``."""
    if not root.exists():
        return {}
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.stat()
        out[str(path.relative_to(root))] = (st.st_size if path.is_file() else 0, st.st_mtime_ns)
    return out


def run_dirs(log_root: Path, experiment: str = "walk") -> list[Path]:
    """Run directories of ``experiment``, oldest first (names start with their date)."""
    return sorted(p for p in (log_root / experiment).iterdir() if p.is_dir())


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory) -> Path:
    """Log root holding one 2-iteration walk run (16 envs, a checkpoint every iteration), trained by the installed
    ``legged-rl-train`` command from a directory outside the repository (the recipe comes from the package)."""
    root = tmp_path_factory.mktemp("trained") / "logs"
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    cmd = [
        installed_command("train"),
        "--task=walk",
        "--num_envs",
        "16",
        "--max_iterations",
        "2",
        "--seed",
        "1",
        "--run_name",
        RUN_NAME,
        "--set",
        "runner.save_interval=1",
        "--log_root",
        str(root),
    ]
    proc = subprocess.run(cmd, cwd=elsewhere, capture_output=True, text=True, timeout=240, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(elsewhere.iterdir()) == []  # everything went to --log_root
    return root


@pytest.fixture
def logs(trained_root, tmp_path) -> Path:
    """A private copy of the trained log root, so a test may add to it."""
    dst = tmp_path / "logs"
    shutil.copytree(trained_root, dst)
    return dst


# A tiny climb training: 8 envs (tests/legged_env's hard_env), one iteration of 8 steps per env.
CLIMB_TINY = ["--num_envs", "8", "--max_iterations", "1", "--set", "runner.num_steps_per_env=8"]


@pytest.fixture(scope="session")
def climb_root(trained_root, tmp_path_factory) -> Path:
    """A log root with the walk run, a soft-obstacle climb run and a hard one initialised from it: the envs of
    tests/legged_env's soft_env (4 envs) and hard_env (8 envs). The soft run is not stepped (0 iterations: its
    checkpoint model_0.pt holds the initial weights, all the hard run needs); the hard run trains 1 iteration.
    Shared by test_climb_scripts and test_sim2sim_scripts (which copies it before writing)."""
    import shutil

    root = tmp_path_factory.mktemp("climb") / "logs"
    shutil.copytree(trained_root, root)
    soft = run_script(
        "train", "--task=climb", "--num_envs", "4", "--max_iterations", "0", "--set", "runner.num_steps_per_env=8",
        *set_args(CLIMB_SETS), *set_args(SOFT_SETS), "--run_name", "soft", log_root=root, timeout=600,
    )  # fmt: skip
    assert soft.returncode == 0, soft.stderr[-3000:]
    (soft_run,) = run_dirs(root, "climb")
    hard = run_script(
        "train", "--task=climb", *CLIMB_TINY, *set_args(CLIMB_SETS), "--run_name", "hard", "--init_from", str(soft_run),
        log_root=root, timeout=600,
    )  # fmt: skip
    assert hard.returncode == 0, hard.stderr[-3000:]
    # Same segments, same policy: every tensor loads as it is.
    assert "misaligned load (complete)" in hard.stdout
    assert "0 remapped, 0 unmatched" in hard.stdout
    return root

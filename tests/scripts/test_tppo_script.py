"""train.py --teacher (TPPO, issue 14): distilling the shared climb run into a depth student, and the
misuse that stops with one error line."""

import json
import shutil

import pytest

from tests.legged_env.envs import CLIMB_SETS, set_args
from tests.scripts.conftest import CLIMB_TINY, REPO, run_dirs, run_script, snapshot
from tests.scripts.test_errors import assert_one_error

pytestmark = pytest.mark.timeout(900)

DISTILL = str(REPO / "legged_rl" / "configs" / "climb_distill.yaml")
# A small depth image and one mini-batch per 4 envs keep the student's first iterations cheap.
SMALL_STUDENT = ["--set", "env.forward_depth.resolution=[24,32]", "--set", "algorithm.num_mini_batches=2"]


def climb_teacher(root) -> str:
    (hard,) = [run for run in run_dirs(root, "climb") if run.name.endswith("_hard")]
    return str(hard)


def test_distil_the_climb_run_into_a_depth_student(climb_root, tmp_path):
    root = tmp_path / "logs"
    shutil.copytree(climb_root, root)
    teacher = climb_teacher(root)
    args = ["--task=climb", "--config", DISTILL, "--teacher", teacher, *CLIMB_TINY, *set_args(CLIMB_SETS)]
    first = run_script("train", *args, *SMALL_STUDENT, "--run_name", "student", log_root=root, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    (student,) = run_dirs(root, "climb_distill")
    config = json.loads((student / "config.json").read_text())
    assert config["algorithm"]["class_name"] == "TPPO" and config["algorithm"]["teacher_run"] == teacher
    assert "forward_depth" in config["obs_segments"] and "engaging_block" not in config["obs_segments"]
    assert (student / "model_1.pt").is_file()
    # Resuming (the schedule continues, the teacher is rebuilt, not loaded) is tested on the learner alone in
    # tests/st_rl/algorithms/test_tppo.py: a second climb training here would cost the suite another minute.


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        ((), ["algorithm.teacher_run", "--teacher"]),  # TPPO without a teacher
        (("--teacher", "nope/run"), ["algorithm.teacher_run", "nope/run", "no such run directory"]),
    ],
    ids=["no_teacher", "missing_teacher"],
)
def test_teacher_misuse_stops_before_the_env_is_built(tmp_path, argv, names):
    root = tmp_path / "logs"
    proc = run_script("train", "--task=climb", "--config", DISTILL, "--max_iterations", "1", *argv, log_root=root)
    assert_one_error(proc, *names)
    assert proc.returncode == 2 and not root.exists()


def test_a_teacher_whose_segments_the_env_cannot_provide(climb_root, tmp_path):
    """A climb teacher for a walk student: walk has no engaging_block, height_scan, wall_distance or base_rpy."""
    root = tmp_path / "logs"
    shutil.copytree(climb_root, root)
    before = snapshot(root)
    proc = run_script(
        "train", "--task=walk", "--num_envs", "16", "--max_iterations", "1", "--teacher", climb_teacher(root),
        "--set", "algorithm.class_name=TPPO", "--set", "algorithm.schedule=fixed", log_root=root,
    )  # fmt: skip
    assert_one_error(proc, "algorithm.teacher_run", "engaging_block (6,)", "height_scan", "wall_distance", "base_rpy")
    assert proc.returncode == 2 and snapshot(root) == before

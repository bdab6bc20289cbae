"""scripts/solver_check.py: the training solver's landings against MuJoCo's default solver (plain MuJoCo only)."""

import json

import pytest

from tests.scripts.conftest import run_script

pytestmark = pytest.mark.timeout(300)


def test_solver_check_ranks_one_iteration_behind_two(tmp_path):
    r = run_script(
        "solver_check",
        "--task=walk",
        "--iterations",
        "1,2",
        "--ls_iterations",
        "5",
        "--heights",
        "0.1",
        "0.4",
        "--num_heights",
        "2",
        log_root=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["reference"]["iterations"] == 100 and out["reference"]["eulerdamp"] is True
    one, two = out["candidates"]
    assert (one["iterations"], two["iterations"]) == (1, 2)
    assert [row["height"] for row in two["by_height"]] == [0.1, 0.4]
    # what chose 2 iterations: within a few millimetres of the reference, where 1 iteration is centimetres off
    assert two["worst_base_height_error_cm"] < 0.5 < 2.0 < one["worst_base_height_error_cm"]
    assert not list(tmp_path.iterdir())  # nothing written


def test_solver_check_bad_input_is_one_error_line(tmp_path):
    r = run_script("solver_check", "--task=walk", "--iterations", "0", log_root=tmp_path)
    assert r.returncode == 2 and "--iterations" in r.stderr and "Traceback" not in r.stderr

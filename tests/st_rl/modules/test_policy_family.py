"""Every registered policy class: built by name, trained a few iterations, rebuilt from its run directory,
exported as TorchScript and ONNX, each export's output == eager (see tests/policy_matrix.py)."""

import warnings

import pytest

from st_rl.modules import POLICY_CLASSES
from st_rl.modules.deterministic_policy import DeterministicPolicyMixin
from tests.policy_matrix import CONFIGS, MUTEX_CLASSES, train_and_export


def test_every_registered_class_is_in_the_matrix():
    assert set(POLICY_CLASSES) == set(CONFIGS) | (MUTEX_CLASSES & set(POLICY_CLASSES))


@pytest.mark.parametrize("class_name", sorted(CONFIGS))
def test_class_trains_reloads_and_exports(class_name, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        row = train_and_export(class_name, iterations=2, log_root=str(tmp_path), num_envs=8)
    assert row["export_max_abs_diff"] < 1e-5
    assert row["onnx_max_abs_diff"] <= 1e-5
    assert "critic" in row["changed_modules"]
    if issubclass(POLICY_CLASSES[class_name], DeterministicPolicyMixin):
        # PPO cannot move a deterministic actor: its stored actions are the means, so the surrogate's gradient
        # with respect to them is zero (st_rl/modules/deterministic_policy.py); only the std and critic learn.
        assert "actor" not in row["changed_modules"] and "std" in row["changed_modules"]
    else:
        assert "actor" in row["changed_modules"]
    assert (tmp_path / class_name / "exported" / "policy.pt").is_file()
    assert (tmp_path / class_name / "exported" / "policy.onnx").is_file()

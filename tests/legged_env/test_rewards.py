"""RewardTerms (scales times dt, zero scales dropped, legged_gym clipping) and config errors at env build."""

import jax.numpy as jnp
import pytest

from legged_env.core.rewards import RewardTerms
from legged_env.errors import ConfigError
from tests.legged_env import envs

pytestmark = pytest.mark.timeout(60)

FUNCTIONS = {
    "good": lambda q, cfg: q["x"] * cfg["k"],
    "bad": lambda q, cfg: -q["x"],
    "termination": lambda q, cfg: q["terminated"].astype(jnp.float32),
}
Q = {"x": jnp.array(2.0), "terminated": jnp.array(True)}
DT = 0.02


def test_scales_times_dt_and_zero_scales_dropped():
    terms = RewardTerms(FUNCTIONS, {"good": 1.5, "bad": 0.0, "termination": -5.0}, DT, {"k": 3.0}, "here")
    assert terms.names == ["good", "termination"]
    values = terms(Q)
    assert set(values) == {"good", "termination"}
    assert float(values["good"]) == pytest.approx(2.0 * 3.0 * 1.5 * DT)
    assert float(values["termination"]) == pytest.approx(-5.0 * DT)


def test_only_positive_clips_the_body_before_adding_termination():
    terms = RewardTerms(FUNCTIONS, {"bad": 1.0, "termination": -5.0}, DT, {"k": 3.0}, "here")
    values = terms(Q)  # bad = -2 * 0.02 = -0.04, termination = -0.1
    assert float(terms.total(values, only_positive=True)) == pytest.approx(0.0 - 0.1)
    assert float(terms.total(values, only_positive=False)) == pytest.approx(-0.04 - 0.1)
    terms = RewardTerms(FUNCTIONS, {"good": 1.0, "bad": 1.0}, DT, {"k": 3.0}, "here")
    assert float(terms.total(terms(Q), only_positive=True)) == pytest.approx((6.0 - 2.0) * DT)


def test_scale_without_function_and_non_number_scale_are_errors():
    with pytest.raises(ConfigError, match=r"reward scale 'nope' in here has no reward function \(valid: bad, good"):
        RewardTerms(FUNCTIONS, {"good": 1.0, "nope": 1.0}, DT, {}, "here")
    with pytest.raises(ConfigError, match="reward scale 'good' in here must be a number"):
        RewardTerms(FUNCTIONS, {"good": "1"}, DT, {}, "here")
    with pytest.raises(ConfigError, match="must be a number"):
        RewardTerms(FUNCTIONS, {"good": True}, DT, {}, "here")


def test_walk_env_drops_its_zero_scales(walk_env):
    scales = walk_env.cfg["rewards"]["scales"]
    assert walk_env.rewards.names == [k for k, v in scales.items() if v != 0.0]
    assert "termination" not in walk_env.rewards.names and "stand_still" not in walk_env.rewards.names
    assert walk_env.rewards.scales["tracking_lin_vel"] == pytest.approx(scales["tracking_lin_vel"] * walk_env.dt)


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (
            lambda c: c["rewards"]["scales"].update(feet_airtime=1.0),
            "reward scale 'feet_airtime' in env.rewards.scales",
        ),
        (lambda c: c["observations"]["actor"].update(bogus={}), "unknown observation segment 'bogus' in env.obs"),
        (lambda c: c["observations"]["critic"].update(heights={}), "unknown observation segment 'heights'"),
        (lambda c: c["terminations"].update(contact_geoms=["trunk", "foot"]), "unknown group 'foot'"),
    ],
)
def test_env_config_errors_name_the_entry(edit, pattern):
    cfg = envs.walk_config(2)
    edit(cfg)
    with pytest.raises(ConfigError, match=pattern.replace(".", r"\.")):
        envs.build(cfg)

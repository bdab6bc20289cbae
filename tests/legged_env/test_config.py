"""merge_strict and the CLI's config resolution: unknown keys and wrong types name key and file."""

import copy

import pytest

from legged_env.config import merge_strict
from legged_env.tasks import get_task
from legged_rl import cli
from legged_rl.cli import CONFIG_ERRORS as ConfigError  # either package's (env keys: legged_env's)

pytestmark = pytest.mark.timeout(60)

DEFAULTS = {
    "episode_length_s": 20.0,
    "decimation": 4,
    "enabled": True,
    "name": "go1",
    "range": [0.5, 1.25],
    "commands": {"lin_vel_x": [-1.0, 1.0], "zero_below": 0.2},
    "rewards": {"scales": {"a": 1.0, "b": -2.0}, "sigma": 0.25},
}
OPEN = frozenset({"env.rewards.scales"})


def merge(override, source="cfg.yaml", **kw):
    return merge_strict(DEFAULTS, override, source, "env", OPEN, **kw)


def test_unknown_key_names_key_file_and_suggestion():
    with pytest.raises(ConfigError) as e:
        merge({"comands": {"x": 1}}, "my.yaml")
    msg = str(e.value)
    assert "'env.comands'" in msg and "my.yaml" in msg and "did you mean 'commands'" in msg


def test_unknown_nested_key_without_close_match_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"'env\.commands\.qqq' in f\.yaml \(valid: lin_vel_x, zero_below\)"):
        merge({"commands": {"qqq": 1}}, "f.yaml")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"episode_length_s": "abc"}, "env.episode_length_s"),
        ({"decimation": True}, "env.decimation"),  # bool is not an int here
        ({"decimation": 4.0}, "env.decimation"),
        ({"episode_length_s": False}, "env.episode_length_s"),
        ({"enabled": 1}, "env.enabled"),
        ({"name": 3}, "env.name"),
        ({"range": 0.5}, "env.range"),
        ({"commands": 3}, "env.commands"),
    ],
)
def test_wrong_type_names_key_and_file(override, key):
    with pytest.raises(ConfigError) as e:
        merge(override, "bad.yaml")
    assert f"'{key}'" in str(e.value) and "bad.yaml" in str(e.value)


def test_int_for_float_and_tuple_for_list_accepted_without_touching_inputs():
    defaults_before = copy.deepcopy(DEFAULTS)
    override = {"episode_length_s": 2, "range": (0.1, 0.2), "commands": {"zero_below": 0}}
    out = merge(override)
    assert out["episode_length_s"] == 2 and out["range"] == (0.1, 0.2) and out["commands"]["zero_below"] == 0
    assert out["commands"]["lin_vel_x"] == [-1.0, 1.0] and out["decimation"] == 4
    assert DEFAULTS == defaults_before
    out["commands"]["lin_vel_x"].append(9)
    assert DEFAULTS == defaults_before  # a deep copy


def test_open_keys_replaced_by_file_updated_by_set():
    replaced = merge({"rewards": {"scales": {"c": 0.5}}})
    assert replaced["rewards"]["scales"] == {"c": 0.5}
    updated = merge({"rewards": {"scales": {"a": 3, "c": 0.5}}}, replace_open=False)
    assert updated["rewards"]["scales"] == {"a": 3, "b": -2.0, "c": 0.5}
    with pytest.raises(ConfigError, match=r"'env\.rewards\.scales' in cfg\.yaml must be a mapping"):
        merge({"rewards": {"scales": [1, 2]}})


def test_resolve_config_file_replaces_open_map_and_set_updates_it():
    spec = get_task("walk")
    raw = {"env": {"rewards": {"scales": {"torques": -1.0}}}, "runner": {"max_iterations": 7}}
    cfg = cli.resolve_config(spec, raw, "file.yaml", ["env.rewards.scales.collision=-2", "env.episode_length_s=3"])
    assert cfg["env"]["rewards"]["scales"] == {"torques": -1.0, "collision": -2}
    assert cfg["env"]["episode_length_s"] == 3
    assert cfg["runner"]["max_iterations"] == 7
    assert set(cfg) == {"env", "policy", "algorithm", "runner"}
    with pytest.raises(ConfigError, match=r"'env\.comands'.*--set env\.comands\.x=1.*did you mean 'commands'"):
        cli.resolve_config(spec, {}, "file.yaml", ["env.comands.x=1"])


def test_unknown_task_lists_registered_ones():
    with pytest.raises(ConfigError, match=r"unknown task 'wlak'.*walk"):
        get_task("wlak")


def test_set_overrides_switch_policy_class_with_its_required_keys():
    spec = get_task("walk")
    items = ["policy.class_name=StateAc", "policy.estimator_target_components=[base_lin_vel]"]
    cfg = cli.resolve_config(spec, {}, "file.yaml", items)
    assert cfg["policy"]["class_name"] == "StateAc"
    missing = r"missing required key 'policy.estimator_target_components' in file.yaml with --set"
    with pytest.raises(ConfigError, match=missing):
        cli.resolve_config(spec, {}, "file.yaml", items[:1])


def test_exponent_floats_without_a_dot_are_numbers():
    """``--set algorithm.learning_rate=5e-4`` (the README's spelling): PyYAML's YAML 1.1 reads ``5e-4`` as a string;
    the scripts' YAML reads it as the number it is, on the command line and in config files."""
    assert cli.parse_override("algorithm.learning_rate=5e-4") == (["algorithm", "learning_rate"], 5e-4)
    assert cli.parse_override("env.rewards.scales.torques=-1e-4")[1] == -1e-4
    assert cli.parse_override("env.commands.lin_vel_x=[1e-1,2E0]")[1] == [0.1, 2.0]
    assert cli.parse_override('runner.run_name="1e-4"')[1] == "1e-4"  # quoted: still a string
    spec = get_task("walk")
    cfg = cli.resolve_config(spec, {}, "f.yaml", ["env.rewards.scales.torques=-1e-4", "algorithm.learning_rate=5e-4"])
    assert cfg["env"]["rewards"]["scales"]["torques"] == -1e-4 and cfg["algorithm"]["learning_rate"] == 5e-4

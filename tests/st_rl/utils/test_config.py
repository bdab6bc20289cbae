import pytest

from st_rl.utils.config import ConfigError, resolve_kwargs


def example(
    num_obs: int, learning_rate: float = 1e-3, num_epochs: int = 5, hidden=(64, 64), use_x: bool = True, name=None
):
    return None


def test_defaults_filled_and_input_untouched():
    cfg = {"learning_rate": 3, "hidden": [8]}
    resolved = resolve_kwargs(example, cfg, "algorithm", "walk.yaml", exclude={"num_obs"})
    assert resolved == {"learning_rate": 3, "num_epochs": 5, "hidden": [8], "use_x": True, "name": None}
    assert cfg == {"learning_rate": 3, "hidden": [8]}
    resolved["hidden"].append(1)
    assert cfg["hidden"] == [8]


def test_unknown_key_names_file_and_suggestion():
    with pytest.raises(ConfigError) as err:
        resolve_kwargs(example, {"lerning_rate": 1.0}, "algorithm", "configs/walk.yaml", exclude={"num_obs"})
    msg = str(err.value)
    assert "unknown key 'algorithm.lerning_rate' in configs/walk.yaml" in msg
    assert "did you mean 'learning_rate'" in msg
    assert "valid: hidden, learning_rate, name, num_epochs, use_x" in msg


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("num_epochs", 2.5, "int"),
        ("learning_rate", True, "float"),
        ("num_epochs", False, "int"),
        ("use_x", 1, "bool"),
        ("hidden", "64", "list"),
    ],
)
def test_wrong_type(key, value, expected):
    with pytest.raises(
        ConfigError, match=rf"wrong type for 'algorithm.{key}' in a.yaml: expected {expected}, got {value!r}"
    ):
        resolve_kwargs(example, {key: value}, "algorithm", "a.yaml", exclude={"num_obs"})


def test_none_default_accepts_anything_and_required_missing():
    assert resolve_kwargs(example, {"name": "x"}, "s", "f", exclude={"num_obs"})["name"] == "x"
    with pytest.raises(ConfigError, match="missing required key 's.num_obs'"):
        resolve_kwargs(example, {}, "s", "f")

"""``legged_env.make`` and ``legged_rl.make_vec_env``: the env the CLI builds, with the CLI's validation."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch

import legged_env
import legged_rl
from legged_env.api import env_config
from legged_env.errors import ConfigError
from legged_env.tasks import get_task
from legged_rl import cli
from legged_rl.torch_vec_env import TorchVecEnv
from tests.legged_env import envs


def test_make_builds_the_env_the_fixtures_build(walk_env):
    env = legged_env.make("walk", num_envs=envs.NUM_ENVS)  # the walk_env config, seed 0: compiled once already
    assert env.cfg == walk_env.cfg
    mine, theirs = env.init(), walk_env.init()
    np.testing.assert_array_equal(np.asarray(mine.obs), np.asarray(theirs.obs))
    actions = envs.commit(jnp.zeros((envs.NUM_ENVS, env.num_actions)))
    stepped = env.step_batched(mine, actions)
    assert stepped.obs.shape == (envs.NUM_ENVS, env.actor_obs.size) and stepped.reward.shape == (envs.NUM_ENVS,)


def test_overrides_merge_into_the_config_as_set_items_do():
    base = env_config("walk", 16)
    cfg = env_config("walk", 16, commands={"lin_vel_x": [0.3, 1.0]}, rewards={"scales": {"torques": -1e-4}})
    assert cfg["commands"]["lin_vel_x"] == [0.3, 1.0]
    assert cfg["commands"]["lin_vel_y"] == base["commands"]["lin_vel_y"]  # a nested dict merges, keeps the rest
    assert cfg["rewards"]["scales"] == {**base["rewards"]["scales"], "torques": -1e-4}  # entry by entry
    spec = get_task("walk")
    items = ["env.num_envs=16", "env.commands.lin_vel_x=[0.3,1.0]", "env.rewards.scales.torques=-1e-4"]
    assert cfg == cli.resolve_config(spec, {}, "x.yaml", items)["env"]  # what --set gives


def test_a_recipe_file_gives_the_cli_env():
    path = legged_rl.recipe_path("climb")
    assert path == cli.CONFIG_DIR / "climb.yaml" and path.is_file()
    spec = get_task("climb")
    expected = cli.resolve_config(spec, cli.read_yaml(path), str(path), ["env.num_envs=8"])["env"]
    assert env_config("climb", 8, config=path) == expected
    assert env_config("climb", 8, config=cli.read_yaml(path)["env"]) == expected  # or its env section as a dict
    assert expected != env_config("climb", 8)  # the recipe is not the defaults


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"comands": {}}, r"^unknown config key 'env\.comands' in make\('walk', comands=\.\.\.\); did you mean"),
        ({"episode_length_s": "long"}, r"^config key 'env\.episode_length_s' in make\('walk', .*expects float"),
        ({"num_envs": 0}, r"^env\.num_envs in the task's defaults with num_envs=\.\.\. must be >= 1, got 0"),
        ({"robot": "spot"}, r"^env\.robot in .* must be one of go1, got 'spot'"),
        ({"config": "nowhere.yaml"}, r"^config file nowhere\.yaml not found"),
        ({"solver": {"iterations": 0}}, r"^env\.solver\.iterations in .* must be an integer >= 1, got 0"),
        ({"domain_rand": {"friction": [0.0, 1.0]}}, r"^env\.domain_rand\.friction in .* 0\.02 <= low <= high"),
        ({"domain_rand": {"joint_damping": [2.0, 1.0]}}, r"^env\.domain_rand\.joint_damping in .* low <= high"),
    ],
)  # fmt: skip
def test_bad_input_is_one_config_error_line_naming_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        legged_env.make("walk", **kwargs)
    assert "\n" not in str(info.value)


def test_unknown_task_and_constructor_rejections_are_config_errors():
    with pytest.raises(ConfigError, match=r"^unknown task 'wlak' \(known tasks: climb, walk, walk_amp\)"):
        legged_env.make("wlak")
    with pytest.raises(ConfigError, match=r"^env\.terrain\.height must be \[low, high\]"):  # the task's own check
        legged_env.make("climb", num_envs=2, terrain={"height": [0.4, 0.1]})


def test_make_vec_env_is_the_bridge_over_the_recipe_env(walk_env):
    vec = legged_rl.make_vec_env("walk", num_envs=envs.NUM_ENVS)  # configs/walk.yaml's env = walk_env's
    assert isinstance(vec, TorchVecEnv) and vec.env.cfg == walk_env.cfg
    obs, critic = vec.reset()
    reference = TorchVecEnv(walk_env).reset()
    torch.testing.assert_close(obs, reference[0])
    torch.testing.assert_close(critic, reference[1])
    with pytest.raises(cli.CONFIG_ERRORS, match=r"--device 'cuda:0': CUDA is not available"):
        legged_rl.make_vec_env("walk", num_envs=4, device="cuda:0")
    with pytest.raises(ConfigError, match=r"'env\.comands'"):
        legged_rl.make_vec_env("walk", num_envs=4, comands={})

"""Observation groups: named groups over our flat observation tensors, their layouts, derived groups, and the
rsl_rl-style obs_groups map check."""

import re
from collections import OrderedDict

import pytest
import torch

from legged_rl.obs_groups import ObservationGroups, concat_groups, resolve_obs_groups, select
from legged_rl.torch_vec_env import TorchVecEnv
from tests.legged_env.envs import segment_slices

pytestmark = pytest.mark.timeout(180)

TEACHER = ["friction", "base_lin_vel", "foot_contacts"]  # critic segments, not in flat order


@pytest.fixture(scope="module")
def venv(walk_env):
    venv = TorchVecEnv(walk_env)
    venv.step(torch.full((venv.num_envs, venv.num_actions), 0.3))  # non-zero last actions
    return venv


def test_groups_are_our_flat_tensors_with_their_layouts(venv):
    groups = venv.observation_groups
    assert groups.names == ("policy", "critic")  # walk has no AMP group
    assert groups.segments("policy") == venv.obs_segments
    assert groups.segments("critic") == venv.privileged_obs_segments
    assert groups.size("policy") == venv.num_obs and groups.size("critic") == venv.num_privileged_obs

    obs = venv.get_observation_groups()
    assert obs.batch_size == torch.Size([venv.num_envs])
    assert set(obs.keys()) == {"policy", "critic"}
    assert torch.equal(obs["policy"], venv.get_observations())
    assert torch.equal(obs["critic"], venv.get_privileged_observations())

    critic = venv.get_privileged_observations()
    parts = venv.split("critic")
    assert parts.batch_size == torch.Size([venv.num_envs])
    assert list(parts.keys()) == list(venv.privileged_obs_segments)
    for name, sl in segment_slices(venv.privileged_obs_segments).items():
        assert groups.slices("critic")[name] == sl
        assert torch.equal(parts[name], critic[:, sl])
    assert torch.all(parts["last_actions"] == 0.3)


def test_a_derived_group_gathers_named_segments_of_its_source(venv):
    groups = venv.observation_groups.derive("teacher", "critic", TEACHER)
    assert groups.names == ("policy", "critic", "teacher")
    assert groups.group("teacher").source == "critic"
    assert list(groups.segments("teacher")) == TEACHER
    assert "teacher" not in venv.observation_groups  # derive returns a copy

    critic = venv.get_privileged_observations()
    c = segment_slices(venv.privileged_obs_segments)
    expected = torch.cat([critic[:, c[name]] for name in TEACHER], dim=1)
    obs = groups.gather(venv.base_observations())
    assert torch.equal(obs["teacher"], expected)
    assert torch.equal(groups.split("teacher", obs["teacher"])["friction"], critic[:, c["friction"]])

    # A group derived from a derived one reads the base tensor's columns directly.
    nested = groups.derive("mass_free", "teacher", ["foot_contacts", "friction"])
    assert nested.group("mass_free").source == "critic"
    assert torch.equal(
        nested.gather(venv.base_observations())["mass_free"],
        torch.cat([critic[:, c["foot_contacts"]], critic[:, c["friction"]]], dim=1),
    )

    # The env serves whatever groups it is given.
    venv.observation_groups = groups
    try:
        assert torch.equal(venv.get_observation_groups()["teacher"], expected)
        assert torch.equal(venv.split("teacher")["base_lin_vel"], critic[:, c["base_lin_vel"]])
    finally:
        venv.observation_groups = ObservationGroups.from_vec_env(venv)


def test_bad_group_declarations_fail_in_one_line(venv):
    groups = venv.observation_groups
    cases = [
        (lambda: groups.derive("teacher", "critic", ["friction", "no_such"]), "no observation segment 'no_such'"),
        (lambda: groups.derive("teacher", "actor", ["friction"]), "no observation group 'actor'"),
        (lambda: groups.derive("critic", "critic", ["friction"]), "'critic' already exists"),
        (lambda: groups.derive("teacher", "critic", []), "non-empty list"),
        (lambda: select(venv.obs_segments, ["dof_pos", "dof_pos"]), "repeated segment name"),
        (lambda: groups.segments("teacher"), "groups: policy, critic"),
    ]
    for fn, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)) as e:
            fn()
        assert "\n" not in str(e.value)


def test_resolve_obs_groups_checks_an_rsl_rl_map(venv):
    groups = venv.observation_groups.derive("teacher", "critic", TEACHER)
    wanted = {"actor": ["policy"], "critic": ["critic", "teacher"]}
    resolved = resolve_obs_groups(wanted, groups, required=("actor", "critic"))
    assert resolved == wanted and resolved["critic"] is not wanted["critic"]  # a copy
    assert resolve_obs_groups(wanted, groups.gather(venv.base_observations())) == wanted  # a TensorDict works too

    obs = groups.gather(venv.base_observations())
    assert torch.equal(concat_groups(obs, resolved["critic"]), torch.cat([obs["critic"], obs["teacher"]], dim=1))

    bad = [
        ({"actor": ["policy", "student"]}, "obs_groups['actor'] names unknown observation group 'student'"),
        ({"actor": []}, "non-empty list"),
        ({"actor": "policy"}, "non-empty list"),
        ({"critic": ["critic"]}, "obs_groups has no 'actor' entry"),
    ]
    for mapping, message in bad:
        with pytest.raises(ValueError, match=re.escape(message)) as e:
            resolve_obs_groups(mapping, groups, required=("actor",))
        assert "\n" not in str(e.value)
        if "unknown" in message:
            assert "(available: policy, critic, teacher)" in str(e.value)


def test_an_amp_task_has_an_amp_group(walk_amp_env):
    venv = TorchVecEnv(walk_amp_env)
    groups = venv.observation_groups
    assert groups.names == ("policy", "critic", "amp")
    assert groups.segments("amp") == venv.amp_obs_segments
    obs = venv.get_observation_groups()
    assert torch.equal(obs["amp"], venv.get_amp_observations())
    assert torch.equal(obs["policy"], venv.get_observations())


def test_groups_from_segments_alone():
    segs = OrderedDict(a=(2,), b=(1, 2, 3))
    groups = ObservationGroups({"x": segs})
    flat = torch.arange(16.0).reshape(2, 8)
    parts = groups.split("x", flat)
    assert parts["b"].shape == (2, 1, 2, 3)
    assert torch.equal(parts["b"].reshape(2, 6), flat[:, 2:])
    with pytest.raises(ValueError, match="has 8 columns, the tensor 7"):
        groups.split("x", flat[:, :7])
    with pytest.raises(ValueError, match="gather needs the base observation"):
        groups.gather({"y": flat})

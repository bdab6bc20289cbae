"""Mutex (skill-switching) policies: selection from the engaging_block, observation re-indexing by segment name,
command override, action-scale conversion, smoothing, recurrent resets, config errors and the TorchScript export."""

from __future__ import annotations

import copy
import io
import json
import os
from collections import OrderedDict

import pytest
import torch

from st_rl.env.engaging_block import ENGAGING_BLOCK_SIZE, OBSTACLE_TYPES, make_engaging_block
from st_rl.modules import POLICY_CLASSES, build_policy, load_policy_from_run, resolve_policy_cfg
from st_rl.modules.actor_critic_field_mutex import ActorCriticClimbMutex, ActorCriticFieldMutex
from st_rl.modules.actor_critic_mutex import ActorCriticMutex, read_action_scale
from st_rl.runners import OnPolicyRunner
from st_rl.utils.config import ConfigError
from st_rl.utils.export import export_max_abs_diff
from st_rl.utils.obs_segments import get_obs_slice, get_subobs_by_components
from tests.st_rl.dummy_env import PointMassEnv

A = 2  # actions
MUTEX_SEGMENTS = OrderedDict(
    [
        ("engaging_block", (ENGAGING_BLOCK_SIZE,)),
        ("commands", (3,)),
        ("dof_pos", (2,)),
        ("last_actions", (A,)),
        ("extra", (1,)),
    ]
)
NUM_OBS = 14
# Sub-policies: different segment sets and orders, different action scales (None: the env config has none -> 1.0).
FIELD_SEGMENTS = OrderedDict([("dof_pos", (2,)), ("commands", (3,)), ("last_actions", (A,))])
CLIMB_SEGMENTS = OrderedDict([("last_actions", (A,)), ("engaging_block", (ENGAGING_BLOCK_SIZE,)), ("dof_pos", (2,))])
JUMP_SEGMENTS = OrderedDict([("commands", (3,)), ("engaging_block", (ENGAGING_BLOCK_SIZE,))])
SCALES = {"field_mlp": 0.25, "field_lstm": 0.25, "climb_gru": 0.5, "jump_mlp": None}

_SMALL = {"actor_hidden_dims": [8], "critic_hidden_dims": [8], "obs_normalization": True}
MLP = {"class_name": "ActorCritic", **_SMALL}
GRU = {"class_name": "ActorCriticRecurrent", "rnn_type": "gru", "rnn_hidden_size": 8, **_SMALL}
LSTM = {"class_name": "ActorCriticRecurrent", "rnn_type": "lstm", "rnn_hidden_size": 8, **_SMALL}

NONE, CLIMB, JUMP = (OBSTACLE_TYPES.index(t) for t in ("none", "climb", "jump_down"))


def write_run(run_dir, policy_cfg: dict, segments: OrderedDict, action_scale: float | None, seed: int, num_actions=A):
    """A run directory as OnPolicyRunner writes it (config.json keys, checkpoint keys), for an untrained policy
    with non-trivial normaliser statistics and non-zero std."""
    torch.manual_seed(seed)
    num_obs = sum(shape[0] for shape in segments.values())
    policy = build_policy(policy_cfg, num_obs, num_obs, num_actions, segments, None)
    data = torch.randn(64, num_obs) * 2.0 + 0.5
    policy.update_normalization(data, data)
    os.makedirs(run_dir)
    env_cfg = {"num_envs": 4, **({"control": {"action_scale": action_scale}} if action_scale is not None else {})}
    config = {
        "policy": resolve_policy_cfg(policy_cfg),
        "algorithm": {"class_name": "PPO"},
        "runner": {},
        "env": env_cfg,
        "world_size": 1,
        "num_envs_per_rank": 4,
        "num_obs": num_obs,
        "num_critic_obs": num_obs,
        "num_actions": num_actions,
        "obs_segments": {k: list(v) for k, v in segments.items()},
        "privileged_obs_segments": None,
    }
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(config, f)
    checkpoint = {
        "model_state_dict": policy.state_dict(),
        "optimizer_state_dict": {},
        "iter": 1,
        "learning_rate": 1e-3,
        "num_obs": num_obs,
        "num_critic_obs": num_obs,
        "num_actions": num_actions,
        "infos": None,
    }
    torch.save(checkpoint, os.path.join(run_dir, "model_1.pt"))


@pytest.fixture
def runs(tmp_path) -> dict[str, str]:
    specs = {
        "field_mlp": (MLP, FIELD_SEGMENTS),
        "field_lstm": (LSTM, FIELD_SEGMENTS),
        "climb_gru": (GRU, CLIMB_SEGMENTS),
        "jump_mlp": (MLP, JUMP_SEGMENTS),
    }
    paths = {}
    for seed, (name, (cfg, segments)) in enumerate(specs.items()):
        paths[name] = str(tmp_path / name)
        write_run(paths[name], cfg, segments, SCALES[name], seed)
    return paths


def field_mutex(runs, field="field_mlp", cls=ActorCriticFieldMutex, segments=MUTEX_SEGMENTS, **kwargs):
    paths = [runs[field], runs["climb_gru"]] + ([runs["jump_mlp"]] if cls is ActorCriticClimbMutex else [])
    num_obs = sum(shape[0] for shape in segments.values())
    return cls(num_obs, num_obs, A, sub_policy_paths=paths, obs_segments=segments, **kwargs)


def make_obs(distance, obstacle_type, height, seed=0) -> torch.Tensor:
    """Random ``(N, NUM_OBS)`` mutex observations with the given engaging blocks (one entry per env)."""
    generator = torch.Generator().manual_seed(seed)
    obs = torch.randn(len(distance), NUM_OBS, generator=generator)
    block = make_engaging_block(
        torch.tensor(distance, dtype=torch.float32),
        torch.tensor(obstacle_type),
        torch.full((len(distance),), 0.5),
        torch.tensor(height, dtype=torch.float32),
    )
    obs[:, get_obs_slice(MUTEX_SEGMENTS, "engaging_block")[0]] = block
    return obs


def sub_obs(obs: torch.Tensor, segments: OrderedDict) -> torch.Tensor:
    return get_subobs_by_components(obs, list(segments), MUTEX_SEGMENTS)


def record_inputs(policy) -> list[torch.Tensor]:
    """Record every observation passed to ``policy.act_inference``."""
    seen: list[torch.Tensor] = []
    original = policy.act_inference

    def wrapped(x):
        seen.append(x.clone())
        return original(x)

    policy.act_inference = wrapped
    return seen


def cols(segments: OrderedDict, name: str) -> slice:
    return get_obs_slice(segments, name)[0]


# --- action scale ---------------------------------------------------------------------------------------------------
def test_read_action_scale():
    assert read_action_scale({"env": {"control": {"action_scale": 0.25}}}) == 0.25
    assert read_action_scale({"env": {"control": {"kp": 20.0}}}) == 1.0
    assert read_action_scale({"env": {}}) == 1.0
    assert read_action_scale({}) == 1.0
    for bad in ("x", -0.5, 0, True):
        with pytest.raises(ConfigError, match="env.control.action_scale in run/config.json must be a positive"):
            read_action_scale({"env": {"control": {"action_scale": bad}}}, "run/config.json")


# --- selection ------------------------------------------------------------------------------------------------------
def test_field_mutex_selects_from_engaging_block(runs):
    mutex = field_mutex(runs, recover_last_action=False)
    assert mutex.action_scale == 0.25 and mutex.sub_policy_action_scales == [0.25, 0.5]
    cases = [  # (distance, type, height, expected sub-policy)
        (5.0, NONE, 0.0, 0),
        (0.5, NONE, 0.0, 0),  # nothing to engage
        (3.0, CLIMB, 0.3, 0),  # too far
        (1.0, CLIMB, 0.3, 1),  # at the trigger distance
        (0.4, CLIMB, 0.3, 1),
        (-0.2, CLIMB, 0.3, 1),  # on it
        (0.5, JUMP, -0.3, 1),  # no jump-down sub-policy: climb
        (1.01, JUMP, -0.3, 0),
    ]
    obs = make_obs(*zip(*[c[:3] for c in cases]))
    out = mutex.act_inference(obs)
    expected_sel = torch.tensor([c[3] for c in cases])
    assert torch.equal(mutex.last_selection, expected_sel)
    field = load_policy_from_run(runs["field_mlp"])
    climb = load_policy_from_run(runs["climb_gru"])
    field_out = field.act_inference(sub_obs(obs, FIELD_SEGMENTS))  # scale 0.25 -> 0.25
    climb_out = climb.act_inference(sub_obs(obs, CLIMB_SEGMENTS)) * (0.5 / 0.25)
    torch.testing.assert_close(out, torch.where(expected_sel[:, None] == 1, climb_out, field_out))


def test_climb_mutex_adds_jump_down_on_negative_height(runs):
    mutex = field_mutex(runs, cls=ActorCriticClimbMutex, recover_last_action=False, skill_trigger_distance=0.8)
    cases = [
        (0.5, JUMP, -0.3, 2),
        (-0.1, JUMP, -0.3, 2),
        (0.5, CLIMB, 0.3, 1),
        (0.8, CLIMB, 0.3, 1),
        (0.9, JUMP, -0.3, 0),  # beyond the (configured) trigger distance
        (0.5, NONE, 0.0, 0),
    ]
    obs = make_obs(*zip(*[c[:3] for c in cases]))
    out = mutex.act_inference(obs)
    assert mutex.last_selection.tolist() == [c[3] for c in cases]
    jump = load_policy_from_run(runs["jump_mlp"])
    jump_out = jump.act_inference(sub_obs(obs, JUMP_SEGMENTS)) * (1.0 / 0.25)
    torch.testing.assert_close(out[:2], jump_out[:2])


# --- command override -------------------------------------------------------------------------------------------------
def test_command_overridden_for_the_selected_sub_policy_only(runs):
    mutex = field_mutex(
        runs, cls=ActorCriticClimbMutex, recover_last_action=False, cmd_vel_mapping={"0": 0.7, 2: [0.2, 0.4]}
    )
    field_seen = record_inputs(mutex.sub_policies[0])
    jump_seen = record_inputs(mutex.sub_policies[2])
    field_cmd, jump_cmd = cols(FIELD_SEGMENTS, "commands"), cols(JUMP_SEGMENTS, "commands")
    n = 6
    blocks = ([5.0] * 3 + [0.5] * 3, [NONE] * 3 + [JUMP] * 3, [0.0] * 3 + [-0.3] * 3)  # envs 0-2 field, 3-5 jump

    obs = make_obs(*blocks, seed=1)
    mutex.act_inference(obs)
    env_cmd = obs[:, cols(MUTEX_SEGMENTS, "commands")]
    field_in, jump_in = field_seen[-1][:, field_cmd], jump_seen[-1][:, jump_cmd]
    assert torch.all(field_in[:3, 0] == 0.7) and torch.equal(field_in[3:, 0], env_cmd[3:, 0])
    assert torch.equal(jump_in[:3, 0], env_cmd[:3, 0])
    drawn = jump_in[3:, 0]
    assert torch.all((drawn >= 0.2) & (drawn <= 0.4)) and len(set(drawn.tolist())) == 3  # sampled per env
    # the other command entries (lateral, yaw) always come from the env
    torch.testing.assert_close(field_in[:, 1:], env_cmd[:, 1:])
    torch.testing.assert_close(jump_in[:, 1:], env_cmd[:, 1:])

    # held while the skill stays selected; redrawn when an env switches into it again (here after its reset)
    mutex.act_inference(make_obs(*blocks, seed=2))
    assert torch.equal(jump_seen[-1][3:, 0], drawn)
    mutex.reset(torch.tensor([False, False, False, True, False, False]))
    mutex.act_inference(make_obs(*blocks, seed=3))
    redrawn = jump_seen[-1][3:, 0]
    assert redrawn[0] != drawn[0] and 0.2 <= redrawn[0] <= 0.4 and torch.equal(redrawn[1:], drawn[1:])

    # the draws are deterministic: a full reset replays them
    mutex.reset()
    mutex.act_inference(make_obs(*blocks, seed=1))
    assert torch.equal(jump_seen[-1][3:, 0], drawn)
    assert len(field_seen) == len(jump_seen) == 4 and field_seen[-1].shape == (n, 7)  # stepped every step


# --- action scales --------------------------------------------------------------------------------------------------
def test_action_scales_converted_both_ways(runs):
    mutex = field_mutex(runs, action_scale=0.5, reset_non_selected=False)
    field_seen, climb_seen = record_inputs(mutex.sub_policies[0]), record_inputs(mutex.sub_policies[1])
    field_last, climb_last = cols(FIELD_SEGMENTS, "last_actions"), cols(CLIMB_SEGMENTS, "last_actions")
    field, climb = load_policy_from_run(runs["field_mlp"]), load_policy_from_run(runs["climb_gru"])
    blocks = ([4.0, 4.0, 0.5, 0.5], [CLIMB] * 4, [0.2] * 4)  # envs 0-1 field, 2-3 climb

    obs1 = make_obs(*blocks, seed=1)
    out1 = mutex.act_inference(obs1)
    # first step: the recovered last action is zero; everything else is the env's, re-indexed by name
    expected_field_in = sub_obs(obs1, FIELD_SEGMENTS)
    expected_field_in[:, field_last] = 0.0
    torch.testing.assert_close(field_seen[-1], expected_field_in)
    assert torch.all(climb_seen[-1][:, climb_last] == 0.0)
    # sub-policy action -> mutex scale: a * scale_sub / 0.5
    torch.testing.assert_close(out1[:2], field.act_inference(field_seen[-1])[:2] * (0.25 / 0.5))
    torch.testing.assert_close(out1[2:], climb.act_inference(climb_seen[-1])[2:] * (0.5 / 0.5))

    # previous mutex output -> each sub-policy's scale: a_prev * 0.5 / scale_sub
    mutex.act_inference(make_obs(*blocks, seed=2))
    torch.testing.assert_close(field_seen[-1][:, field_last], out1 * (0.5 / 0.25))
    torch.testing.assert_close(climb_seen[-1][:, climb_last], out1 * (0.5 / 0.5))

    # without recovery the env's last_actions segment is passed through as is
    plain = field_mutex(runs, recover_last_action=False)
    plain_seen = record_inputs(plain.sub_policies[0])
    obs = make_obs(*blocks, seed=4)
    plain.act_inference(obs)
    plain.act_inference(obs)
    torch.testing.assert_close(plain_seen[-1][:, field_last], obs[:, cols(MUTEX_SEGMENTS, "last_actions")])


def test_last_action_segment_need_not_exist_in_the_mutex_env_when_recovered(runs):
    segments = OrderedDict((k, v) for k, v in MUTEX_SEGMENTS.items() if k != "last_actions")
    mutex = field_mutex(runs, segments=segments)
    assert mutex.act_inference(torch.randn(3, 12)).shape == (3, A)
    with pytest.raises(ConfigError, match=r"sub-policy 0 \(.*field_mlp\) needs observation segment 'last_actions'"):
        field_mutex(runs, segments=segments, recover_last_action=False)


# --- smoothing ------------------------------------------------------------------------------------------------------
def test_smoothing_is_a_moving_average_of_the_selected_actions(runs):
    kwargs = {"recover_last_action": False, "reset_non_selected": False}
    raw_mutex = field_mutex(runs, **kwargs)
    smooth_mutex = field_mutex(runs, action_smoothing_buffer_len=3, **kwargs)
    distances = [3.0, 2.0, 1.0, 0.5, 0.0, -0.5]  # env 0 switches to climb at step 2; env 1 stays far
    raw, smooth = [], []
    for t, d in enumerate(distances):
        obs = make_obs([d, 4.0], [CLIMB, CLIMB], [0.3, 0.3], seed=t)
        raw.append(raw_mutex.act_inference(obs))
        smooth.append(smooth_mutex.act_inference(obs))
        if t == 3:  # env 1 starts a new episode after step 3
            dones = torch.tensor([False, True])
            raw_mutex.reset(dones)
            smooth_mutex.reset(dones)
    for t in range(len(distances)):
        for env, start in ((0, 0), (1, 4 if t >= 4 else 0)):
            window = torch.stack([raw[s][env] for s in range(max(start, t - 2), t + 1)])
            torch.testing.assert_close(smooth[t][env], window.mean(dim=0))
    assert not torch.allclose(smooth[2][0], raw[2][0])  # the switch is smoothed
    torch.testing.assert_close(smooth[0], raw[0])
    torch.testing.assert_close(smooth[4][1], raw[4][1])  # first step after the reset


# --- recurrent resets -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [True, "all", False, "when_skill"])
def test_reset_non_selected(runs, mode):
    mutex = field_mutex(runs, field="field_lstm", recover_last_action=False, reset_non_selected=mode)
    distances = [3.0, 3.0, 3.0, 0.5, 0.2, 3.0]  # env 0: field, climb from step 3, field again at step 5
    steps = [make_obs([d, 4.0], [CLIMB, CLIMB], [0.3, 0.3], seed=10 + t) for t, d in enumerate(distances)]
    field_cont, climb_cont = load_policy_from_run(runs["field_lstm"]), load_policy_from_run(runs["climb_gru"])
    for t, obs in enumerate(steps):
        out = mutex.act_inference(obs)
        field_in, climb_in = sub_obs(obs, FIELD_SEGMENTS), sub_obs(obs, CLIMB_SEGMENTS)
        # continuous references: stepped on every step, never reset; fresh ones: a zero state at this step
        cont = {0: field_cont.act_inference(field_in)[0], 1: climb_cont.act_inference(climb_in)[0] * 2.0}
        fresh = {
            0: load_policy_from_run(runs["field_lstm"]).act_inference(field_in)[0],
            1: load_policy_from_run(runs["climb_gru"]).act_inference(climb_in)[0] * 2.0,
        }
        states = mutex.get_hidden_states()
        climb_state_env1 = states["sub_policy_1/actor"][:, 1]
        if mode in (True, "all"):
            assert torch.all(climb_state_env1 == 0)  # env 1 never selects climb
        else:
            assert torch.all(climb_state_env1 != 0)
        if t == 3:  # switch into the climb skill
            expected = fresh[1] if mode in (True, "all", "when_skill") else cont[1]
            torch.testing.assert_close(out[0], expected)
            assert not torch.allclose(fresh[1], cont[1])
        if t == 5:  # back to the field policy
            expected = fresh[0] if mode in (True, "all") else cont[0]
            torch.testing.assert_close(out[0], expected)
            assert not torch.allclose(fresh[0], cont[0])


def test_reset_non_selected_rejects_unknown_values(runs):
    for bad in ("sometimes", 1, "none"):
        with pytest.raises(ConfigError, match=r"reset_non_selected must be one of True, False, 'all', 'when_skill'"):
            field_mutex(runs, reset_non_selected=bad)


# --- errors -----------------------------------------------------------------------------------------------------------
def _error(fn) -> str:
    with pytest.raises(ConfigError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_config_errors_are_one_clear_line(runs, tmp_path):
    climb = runs["climb_gru"]

    def mutex(paths, segments=MUTEX_SEGMENTS, **kwargs):
        num_obs = sum(shape[0] for shape in segments.values())
        return ActorCriticFieldMutex(num_obs, num_obs, A, sub_policy_paths=paths, obs_segments=segments, **kwargs)

    missing = str(tmp_path / "missing_run")
    assert "sub-policy 0 (" + missing + "): run directory not found" in _error(lambda: mutex([missing, climb]))
    os.makedirs(tmp_path / "empty")
    assert "no config.json" in _error(lambda: mutex([str(tmp_path / "empty"), climb]))
    no_model = tmp_path / "no_model"
    os.makedirs(no_model)
    with open(no_model / "config.json", "w") as f:
        json.dump({}, f)
    assert "sub-policy 1" in _error(lambda: mutex([runs["field_mlp"], str(no_model)]))
    message = _error(lambda: mutex([runs["field_mlp"], climb], sub_policy_checkpoints=[5, -1]))
    assert "sub-policy 0" in message and "checkpoint 5 not found" in message

    write_run(str(tmp_path / "three_actions"), MLP, OrderedDict([("dof_pos", (2,))]), 0.25, 0, num_actions=3)
    message = _error(lambda: mutex([str(tmp_path / "three_actions"), climb]))
    assert "three_actions) has 3 actions, the mutex env has 2" in message

    no_dof = OrderedDict((k, v) for k, v in MUTEX_SEGMENTS.items() if k != "dof_pos")
    message = _error(lambda: mutex([runs["field_mlp"], climb], no_dof))
    assert "sub-policy 0 (" + runs["field_mlp"] + ") needs observation segment 'dof_pos'" in message
    wide = OrderedDict((k, (4,) if k == "commands" else v) for k, v in MUTEX_SEGMENTS.items())
    assert "segment 'commands' has shape (3,) there but (4,)" in _error(lambda: mutex([runs["field_mlp"], climb], wide))
    no_block = OrderedDict(
        [("engaging_block", (5,))] + [(k, v) for k, v in MUTEX_SEGMENTS.items() if k != "engaging_block"]
    )
    assert "needs observation segment 'engaging_block' of shape (6,)" in _error(
        lambda: mutex([runs["field_mlp"], runs["field_mlp"]], no_block)
    )
    assert "ActorCriticFieldMutex needs 2 sub_policy_paths" in _error(lambda: mutex([climb] * 3))
    assert "must be a non-empty list" in _error(lambda: ActorCriticMutex(3, 3, A, sub_policy_paths=[]))

    paths = [runs["field_mlp"], climb]
    assert "key '5' is not a sub-policy index (valid: 0, 1)" in _error(lambda: mutex(paths, cmd_vel_mapping={"5": 1}))
    assert "key 'x'" in _error(lambda: mutex(paths, cmd_vel_mapping={"x": 1}))
    assert "range [low, high] with low <= high" in _error(lambda: mutex(paths, cmd_vel_mapping={0: [0.4, 0.2]}))
    message = _error(lambda: mutex(paths, cmd_vel_mapping={1: 0.5}))
    assert "maps sub-policy 1" in message and "no 'commands' segment" in message
    assert "action_smoothing_buffer_len must be an integer >= 1" in _error(
        lambda: mutex(paths, action_smoothing_buffer_len=0)
    )


def test_built_by_name_from_a_config(runs, monkeypatch):
    monkeypatch.setitem(POLICY_CLASSES, "ActorCriticClimbMutex", ActorCriticClimbMutex)
    cfg = {
        "class_name": "ActorCriticClimbMutex",
        "sub_policy_paths": [runs["field_mlp"], runs["climb_gru"], runs["jump_mlp"]],
        "cmd_vel_mapping": {"0": 0.7, "2": [0.2, 0.4]},
        "reset_non_selected": "when_skill",
    }
    resolved = resolve_policy_cfg(cfg)
    assert resolved["skill_trigger_distance"] == 1.0 and resolved["sub_policy_checkpoints"] is None
    policy = build_policy(cfg, NUM_OBS, NUM_OBS, A, MUTEX_SEGMENTS)
    assert isinstance(policy, ActorCriticClimbMutex) and policy.act_inference(torch.randn(2, NUM_OBS)).shape == (2, A)
    with pytest.raises(ConfigError, match="did you mean 'skill_trigger_distance'"):
        build_policy({**cfg, "skill_trigger_distnce": 2.0}, NUM_OBS, NUM_OBS, A, MUTEX_SEGMENTS)
    with pytest.raises(ConfigError, match="missing required key 'policy.sub_policy_paths'"):
        build_policy({"class_name": "ActorCriticClimbMutex"}, NUM_OBS, NUM_OBS, A, MUTEX_SEGMENTS)


def test_runner_written_run_dir_as_sub_policy(tmp_path):
    """A run directory really written by OnPolicyRunner (PointMassEnv: segments pos, target; no action scale)."""
    walk_dir = str(tmp_path / "walk")
    cfg = {
        "policy": {"actor_hidden_dims": [8], "critic_hidden_dims": [8], "obs_normalization": True},
        "runner": {"num_steps_per_env": 4, "print_progress": False},
    }
    runner = OnPolicyRunner(PointMassEnv(num_envs=4), cfg, log_dir=walk_dir)
    runner.learn(1)
    climb_dir = str(tmp_path / "climb")
    write_run(climb_dir, MLP, OrderedDict([("pos", (2,)), ("engaging_block", (ENGAGING_BLOCK_SIZE,))]), 0.5, 3)
    segments = OrderedDict([("engaging_block", (ENGAGING_BLOCK_SIZE,)), ("target", (2,)), ("pos", (2,))])
    mutex = ActorCriticFieldMutex(10, 10, 2, sub_policy_paths=[walk_dir, climb_dir], obs_segments=segments)
    assert mutex.sub_policy_action_scales == [1.0, 0.5] and mutex.action_scale == 1.0
    obs = torch.randn(3, 10)
    obs[:, :ENGAGING_BLOCK_SIZE] = make_engaging_block(
        torch.tensor([5.0, 5.0, 0.2]), torch.tensor([CLIMB] * 3), torch.full((3,), 0.5), torch.full((3,), 0.3)
    )
    out = mutex.act_inference(obs)
    walk_obs = torch.cat([obs[:, 8:10], obs[:, 6:8]], dim=1)  # the runner's order: pos, target
    torch.testing.assert_close(out[:2], runner.get_inference_policy()(walk_obs)[:2])
    assert mutex.last_selection.tolist() == [0, 0, 1]


def test_frozen_and_not_trainable(runs):
    mutex = field_mutex(runs, cls=ActorCriticClimbMutex)
    assert not ActorCriticMutex.is_recurrent and not mutex.is_recurrent
    assert all(not p.requires_grad for p in mutex.parameters()) and len(list(mutex.parameters())) > 0
    mutex.train()
    assert all(not policy.training for policy in mutex.sub_policies)
    obs = torch.randn(4, NUM_OBS)
    twin = copy.deepcopy(mutex)
    torch.testing.assert_close(mutex.act(obs), twin.act_inference(obs))


# --- export -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [True, False, "when_skill"])
def test_export_is_one_torchscript_module_equal_to_eager(runs, mode):
    mutex = field_mutex(
        runs,
        field="field_lstm",
        cls=ActorCriticClimbMutex,
        cmd_vel_mapping={"0": [0.5, 1.0], "2": 0.3},
        action_smoothing_buffer_len=2,
        reset_non_selected=mode,
    )
    for _ in range(3):  # some eager state first: the export starts from its own fresh state
        mutex.act_inference(torch.randn(4, NUM_OBS))
    scripted = torch.jit.script(mutex.export_module())
    assert export_max_abs_diff(mutex, scripted, NUM_OBS, steps=24) < 1e-5
    # the random sequence exercises every sub-policy
    eager = copy.deepcopy(mutex)
    eager.reset()
    seen = set()
    generator = torch.Generator().manual_seed(0)
    for _ in range(8):
        eager.act_inference(torch.randn(4, NUM_OBS, generator=generator) * 2.0)
        seen |= set(eager.last_selection.tolist())
    assert seen == {0, 1, 2}

    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    scripted.reset()
    loaded.reset()
    for t in range(6):
        obs = torch.randn(5, NUM_OBS) * 2.0
        torch.testing.assert_close(loaded(obs), scripted(obs), rtol=0, atol=0)
        dones = torch.tensor([t % 2 == 0, False, True, False, t == 3])
        loaded.reset(dones)
        scripted.reset(dones)

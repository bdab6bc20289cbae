"""TorchRLEnv: a TorchRL EnvBase over the walk env; specs, a rollout with an exported st_rl policy, auto-reset and
partial resets."""

import jax.numpy as jnp
import pytest
import torch

# No importorskip: `.[dev]` (what the README and CI install) has every extra, so a missing one fails here.
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torchrl.envs import EnvBase
from torchrl.envs.utils import check_env_specs

from legged_rl.adapters.torchrl_env import TorchRLEnv
from legged_rl.torch_vec_env import TorchVecEnv
from st_rl.modules import build_policy
from st_rl.utils.export import export_policy_as_jit
from tests.legged_env.envs import segment_slices

pytestmark = pytest.mark.timeout(180)

STEPS = 100
TIMED = [1, 5]  # envs that reach their time limit at rollout step TIME_OUT_AT
TIME_OUT_AT = 9
FALLEN = [3]  # upside down at the start: terminated by the first step


@pytest.fixture(scope="module")
def env(walk_env):
    return TorchRLEnv(TorchVecEnv(walk_env))


@pytest.fixture(scope="module")
def exported(env, tmp_path_factory):
    """The TorchScript module st_rl exports from an untrained ActorCritic of the env's sizes."""
    venv = env.venv
    policy = build_policy(
        {"actor_hidden_dims": [32, 32], "critic_hidden_dims": [32, 32]},
        venv.num_obs,
        venv.num_privileged_obs,
        venv.num_actions,
        venv.obs_segments,
        venv.privileged_obs_segments,
    )
    path = tmp_path_factory.mktemp("export") / "policy.pt"
    export_policy_as_jit(policy, str(path), venv.num_obs)
    return torch.jit.load(str(path))


def test_specs_pass_torchrls_check(env, walk_env):
    assert isinstance(env, EnvBase) and env.batch_size == torch.Size([16])
    venv = env.venv
    spec = env.observation_spec
    assert set(spec.keys()) == {"policy", "critic"}
    assert spec["policy"].shape == (16, venv.num_obs) and spec["critic"].shape == (16, venv.num_privileged_obs)
    assert env.action_spec.shape == (16, venv.num_actions)
    clip = walk_env.cfg["control"]["clip_actions"]
    assert torch.all(env.action_spec.space.low == -clip) and torch.all(env.action_spec.space.high == clip)
    assert env.reward_spec.shape == (16, 1)
    assert set(env.done_keys) == {"done", "terminated", "truncated"}
    check_env_specs(env)
    check_env_specs(TorchRLEnv(venv, segments=True))  # with the per-segment views too

    td = TorchRLEnv(venv, segments=True).reset()
    for name, sl in segment_slices(venv.privileged_obs_segments).items():
        assert torch.equal(td["segments", "critic", name], td["critic"][:, sl])


def test_rollout_with_the_exported_policy(env, exported):
    venv = env.venv
    policy = TensorDictModule(exported, in_keys=["policy"], out_keys=["action"])
    start = env.reset()
    assert torch.all(venv.episode_length_buf == 0)
    lengths = venv.episode_length_buf.clone()
    lengths[TIMED] = venv.max_episode_length - (TIME_OUT_AT + 1)
    venv.episode_length_buf = lengths
    state = venv.state
    upside_down = jnp.array([0.0, 1.0, 0.0, 0.0])  # half a turn about x
    venv.state = state.replace(
        data=state.data.replace(qpos=state.data.qpos.at[jnp.array(FALLEN), 3:7].set(upside_down))
    )
    data = env.rollout(STEPS, policy, auto_reset=False, tensordict=start, break_when_any_done=False)

    n, a = venv.num_envs, venv.num_actions
    assert data.batch_size == torch.Size([n, STEPS])
    assert data["action"].shape == (n, STEPS, a)
    assert data["policy"].shape == (n, STEPS, venv.num_obs)
    assert data["next", "critic"].shape == (n, STEPS, venv.num_privileged_obs)
    for key in ("reward", "done", "terminated", "truncated"):
        assert data["next", key].shape == (n, STEPS, 1)
    # The actions are the exported module's outputs for the observations the env served.
    for t in range(STEPS):
        assert torch.equal(data["action"][:, t], exported(data["policy"][:, t]))

    done = data["next", "done"][..., 0]
    terminated, truncated = data["next", "terminated"][..., 0], data["next", "truncated"][..., 0]
    assert torch.equal(done, terminated | truncated) and not torch.any(terminated & truncated)
    assert torch.all(truncated[TIMED, TIME_OUT_AT]) and not torch.any(truncated[TIMED, :TIME_OUT_AT])
    assert torch.all(terminated[FALLEN, 0]) and not torch.any(truncated[FALLEN, 0])
    assert torch.all(data["done"] == False)  # noqa: E712 (the root of every step is after any reset)

    # "next" of an env that did not end is the next step's root; of an ended env, the critic group is the final
    # observation of the ended episode and the policy group already the new episode's first.
    c, p = segment_slices(venv.privileged_obs_segments), segment_slices(venv.obs_segments)
    following = done[:, :-1]
    for key in ("policy", "critic"):
        same = (data["next", key][:, :-1] == data[key][:, 1:]).all(-1)
        assert torch.all(same[~following]), key
    assert torch.equal(data["next", "policy"][:, :-1], data["policy"][:, 1:])
    assert torch.all((data["next", "critic"][:, :-1] != data["critic"][:, 1:]).any(-1)[following])
    ended, first = data["next", "critic"][TIMED, TIME_OUT_AT], data["critic"][TIMED, TIME_OUT_AT + 1]
    actions = data["action"][TIMED, TIME_OUT_AT]
    assert torch.equal(ended[:, c["last_actions"]], actions)  # the ended episode saw its last action
    assert torch.all(first[:, c["last_actions"]] == 0) and torch.all(first[:, c["foot_contacts"]] == 0)
    assert torch.all(data["policy"][TIMED, TIME_OUT_AT + 1][:, p["last_actions"]] == 0)

    # The partial resets after each done touched only the envs that ended: the others ran all the steps.
    never_ended = ~done.any(1)
    assert bool(never_ended.any())
    assert torch.all(venv.episode_length_buf[never_ended] == STEPS)
    last_end = torch.where(done, torch.arange(STEPS), -1).max(1).values
    assert torch.equal(venv.episode_length_buf[~never_ended], (STEPS - 1 - last_end)[~never_ended])


def test_a_reset_mask_restarts_only_running_envs_it_names(env):
    venv = env.venv
    env.reset()
    actions = torch.zeros(venv.num_envs, venv.num_actions)
    for _ in range(3):
        env.step(TensorDict({"action": actions}, batch_size=env.batch_size))
    before = venv.get_privileged_observations().clone()
    mask = torch.zeros(venv.num_envs, 1, dtype=torch.bool)
    mask[[0, 3]] = True
    out = env.reset(TensorDict({"_reset": mask}, batch_size=env.batch_size))
    m = mask[:, 0]
    assert torch.all(venv.episode_length_buf[m] == 0) and torch.all(venv.episode_length_buf[~m] == 3)
    critic = venv.get_privileged_observations()
    assert torch.equal(critic[~m], before[~m])
    assert torch.all((critic[m] != before[m]).any(-1))
    assert torch.equal(out["critic"][m], critic[m]) and not out["done"].any()


def test_seeds_pick_the_initial_states(env):
    env.set_seed(3)
    a = env.reset()["critic"]
    env.set_seed(3)
    b = env.reset()["critic"]
    env.set_seed(4)
    c = env.reset()["critic"]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_an_amp_task_serves_the_final_amp_observation(walk_amp_env):
    env = TorchRLEnv(TorchVecEnv(walk_amp_env))
    venv = env.venv
    assert set(env.observation_spec.keys()) == {"policy", "critic", "amp"}
    td = env.reset()
    assert torch.equal(td["amp"], venv.get_amp_observations())
    lengths = venv.episode_length_buf.clone()
    lengths[TIMED] = venv.max_episode_length - 1
    venv.episode_length_buf = lengths
    out = env.step(td.set("action", torch.zeros(venv.num_envs, venv.num_actions)))["next"]
    timed = torch.zeros(venv.num_envs, dtype=torch.bool)
    timed[TIMED] = True
    assert torch.equal(out["truncated"][:, 0], timed)
    assert torch.equal(out["amp"], torch.from_dlpack(venv.state.final_amp_obs))
    now = venv.get_amp_observations()
    assert torch.equal(out["amp"][~timed], now[~timed])
    assert torch.all((out["amp"][timed] != now[timed]).any(-1))

import os

import pytest
import torch

from st_rl.runners import CheckpointError, NonFiniteError, OnPolicyRunner
from st_rl.utils.config import ConfigError
from tests.st_rl.dummy_env import PointMassEnv


def small_cfg(seed: int = 0, **runner) -> dict:
    return {
        "policy": {"actor_hidden_dims": [32, 32], "critic_hidden_dims": [32, 32], "obs_normalization": True},
        "algorithm": {"num_mini_batches": 2},
        "runner": {"num_steps_per_env": 24, "seed": seed, "print_progress": False, **runner},
    }


class FaultyEnv(PointMassEnv):
    """Injects NaN into segment ``target`` of env 3, or raises KeyboardInterrupt, at a given step count."""

    def __init__(self, fault_at_step: int, fault: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fault_at_step, self.fault, self.steps = fault_at_step, fault, 0

    def step(self, actions):
        self.steps += 1
        obs, privileged_obs, rewards, dones, infos = super().step(actions)
        if self.steps == self.fault_at_step:
            if self.fault == "interrupt":
                raise KeyboardInterrupt
            obs[3, 2] = float("nan")  # column 2 = first entry of segment "target"
        return obs, privileged_obs, rewards, dones, infos


class FinalObsEnv(PointMassEnv):
    """``final="nan"``: NaN in segment ``dist`` of ``final_critic_obs`` wherever an env times out (privileged critic);
    ``final="missing"``: no ``final_critic_obs`` in the infos at all."""

    def __init__(self, final: str, **kwargs) -> None:
        super().__init__(privileged=True, **kwargs)
        self.final = final

    def step(self, actions):
        obs, privileged_obs, rewards, dones, infos = super().step(actions)
        if self.final == "missing":
            del infos["final_critic_obs"]
        else:
            infos["final_critic_obs"][infos["time_outs"], 4] = float("nan")
        return obs, privileged_obs, rewards, dones, infos


def checkpoint_files(log_dir) -> list[str]:
    return sorted(f for f in os.listdir(log_dir) if f.endswith((".pt", ".tmp")))


def test_mean_reward_rises():
    # Measured (seeds 0-7, 32 envs): mean episode return after 2 iterations 1.4-4.4 (random policy),
    # after 25 iterations 23.8-26.4. Threshold: at least +15 and above 18.
    runner = OnPolicyRunner(PointMassEnv(num_envs=32, seed=0), small_cfg(seed=0), log_dir=None)
    runner.learn(2)
    early = runner.episode_statistics()["mean_reward"]
    runner.learn(23)
    late = runner.episode_statistics()["mean_reward"]
    assert runner.current_learning_iteration == 25
    assert late > early + 15 and late > 18, (early, late)


def test_nan_observation_names_segment_and_env_without_new_checkpoint(tmp_path):
    # 24 steps per iteration: step 60 is inside iteration 3; iterations 1 and 2 were saved.
    env = FaultyEnv(fault_at_step=60, fault="nan", num_envs=8)
    runner = OnPolicyRunner(env, small_cfg(save_interval=1), log_dir=str(tmp_path))
    with pytest.raises(NonFiniteError, match=r"non-finite observations: segment 'target', env 3"):
        runner.learn(5)
    assert checkpoint_files(tmp_path) == ["model_1.pt", "model_2.pt"]


def test_nan_final_critic_obs_is_named_before_any_update():
    # Time-outs at step 10 (max_episode_length 10), inside the first rollout: the NaN would become a NaN reward.
    runner = OnPolicyRunner(FinalObsEnv("nan", num_envs=8, max_episode_length=10), small_cfg(), log_dir=None)
    before = {k: v.detach().clone() for k, v in runner.alg.policy.named_parameters()}
    with pytest.raises(NonFiniteError, match=r"non-finite final critic observations: segment 'dist', env 0"):
        runner.learn(1)
    for name, value in runner.alg.policy.named_parameters():
        assert torch.equal(value, before[name]), name  # the optimiser never stepped


def test_env_without_final_critic_obs_fails_at_its_first_step():
    env = FinalObsEnv("missing", num_envs=8, max_episode_length=1000)  # no time-out in the first rollout
    runner = OnPolicyRunner(env, small_cfg(), log_dir=None)
    with pytest.raises(ValueError, match=r"infos lack final_critic_obs"):
        runner.learn(1)
    assert env.episode_length_buf.max().item() == 1


def test_keyboard_interrupt_saves_then_reraises(tmp_path):
    env = FaultyEnv(fault_at_step=30, fault="interrupt", num_envs=4)
    runner = OnPolicyRunner(env, small_cfg(save_interval=100), log_dir=str(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        runner.learn(5)
    assert checkpoint_files(tmp_path) == ["model_1.pt"]


def test_save_load_resume_continues_iterations_and_optimizer(tmp_path):
    runner = OnPolicyRunner(PointMassEnv(num_envs=4), small_cfg(save_interval=100), log_dir=str(tmp_path))
    runner.learn(3)
    assert checkpoint_files(tmp_path) == ["model_3.pt"]
    resumed = OnPolicyRunner(PointMassEnv(num_envs=4, seed=1), small_cfg(seed=5), log_dir=str(tmp_path))
    resumed.load(str(tmp_path / "model_3.pt"))
    assert resumed.current_learning_iteration == 3
    assert resumed.alg.learning_rate == runner.alg.learning_rate
    for (name, a), b in zip(runner.alg.policy.state_dict().items(), resumed.alg.policy.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    state_a, state_b = runner.alg.optimizer.state_dict()["state"], resumed.alg.optimizer.state_dict()["state"]
    assert state_a.keys() == state_b.keys() and len(state_a) > 0
    for key in state_a:
        for field in ("step", "exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(state_a[key][field], state_b[key][field])
    resumed.learn(2)
    assert checkpoint_files(tmp_path) == ["model_3.pt", "model_5.pt"]
    assert (tmp_path / "config.json").exists()


def test_corrupt_checkpoint_is_one_line_error(tmp_path):
    runner = OnPolicyRunner(PointMassEnv(num_envs=4), small_cfg(), log_dir=None)
    path = tmp_path / "model_7.pt"
    runner.save(str(path))
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.raises(CheckpointError) as err:
        runner.load(str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="not found"):
        runner.load(str(tmp_path / "missing.pt"))


def test_size_mismatch_names_sizes(tmp_path):
    runner = OnPolicyRunner(PointMassEnv(num_envs=4), small_cfg(), log_dir=None)
    runner.save(str(tmp_path / "model_0.pt"))
    other = OnPolicyRunner(PointMassEnv(num_envs=4, privileged=True), small_cfg(), log_dir=None)
    with pytest.raises(
        CheckpointError, match=r"model_0.pt does not fit the environment: num_critic_obs 5 \(env\) vs 4"
    ):
        other.load(str(tmp_path / "model_0.pt"))


def test_failed_save_keeps_previous_checkpoint_and_no_temp_files(tmp_path, monkeypatch):
    runner = OnPolicyRunner(PointMassEnv(num_envs=4), small_cfg(), log_dir=None)
    path = tmp_path / "model_1.pt"
    runner.save(str(path), infos={"note": "good", "values": [1, 2.0]})
    good = path.read_bytes()
    with pytest.raises(TypeError, match="object"):
        runner.save(str(path), infos={"bad": object()})  # torch.load(weights_only=True) could not read it back

    def half_write(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(torch, "save", half_write)
    with pytest.raises(KeyboardInterrupt):
        runner.save(str(path))
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["model_1.pt"]
    monkeypatch.undo()
    assert runner.load(str(path)) == {"note": "good", "values": [1, 2.0]}


def test_inference_policy_is_deterministic_and_does_not_update_stats():
    runner = OnPolicyRunner(PointMassEnv(num_envs=4), small_cfg(), log_dir=None)
    runner.learn(1)
    count = runner.alg.policy.actor_obs_normalizer.count.item()
    policy = runner.get_inference_policy()
    obs = torch.randn(6, 4)
    torch.testing.assert_close(policy(obs), policy(obs))
    torch.testing.assert_close(policy(obs), runner.alg.policy.act_inference(obs).detach())
    assert runner.alg.policy.actor_obs_normalizer.count.item() == count == 4 * 24


def test_unknown_section_and_key_rejected():
    with pytest.raises(ConfigError, match="unknown section"):
        OnPolicyRunner(PointMassEnv(num_envs=2), {"polcy": {}}, log_dir=None)
    with pytest.raises(ConfigError, match=r"'runner.num_step_per_env'.*did you mean 'num_steps_per_env'"):
        OnPolicyRunner(PointMassEnv(num_envs=2), {"runner": {"num_step_per_env": 3}}, log_dir=None)


def test_tensorboard_keys(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runner = OnPolicyRunner(PointMassEnv(num_envs=8, max_episode_length=10), small_cfg(), log_dir=str(tmp_path))
    runner.learn(2, init_at_random_ep_len=True)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    expected = {
        "Loss/surrogate", "Loss/value_function", "Loss/entropy", "Loss/learning_rate", "Policy/approx_kl",
        "Policy/clipfrac", "Policy/explained_variance", "Policy/mean_noise_std", "Perf/total_fps",
        "Perf/collection_time", "Perf/learning_time", "Train/mean_reward", "Train/mean_episode_length",
        "Episode/rew_reach",
    }  # fmt: skip
    assert expected <= tags, expected - tags

"""TPPO (st_rl.algorithms.tppo): a frozen teacher from a run directory labels the rollout, DAgger mixes its actions
in, the student learns from the labels (alone or on top of PPO).

The teacher is an exact expert of the image env: a linear policy ``a = K (target - proprio)`` over the segments
``proprio`` and ``target``, saved as a run by the runner on :class:`OracleEnv`. The image env has ``target`` in
its privileged observation only, so the teacher's observation must be assembled from both observations by name,
and the student (reading ``proprio``, ``image`` and ``height_map``) can learn the target only from the image.
"""

from __future__ import annotations

import copy
import json
import math
from collections import OrderedDict

import numpy as np
import pytest
import torch

from st_rl.algorithms import TPPO
from st_rl.algorithms.tppo import TEACHER_ACTIONS, teacher_act_prob_at
from st_rl.env.vec_env import VecEnv
from st_rl.modules import ActorCritic, VisualDeterministicAC, VisualDeterministicRecurrent, load_policy_from_run
from st_rl.runners import OnPolicyRunner
from st_rl.runners.config import resolve_train_cfg
from st_rl.runners.logger import TrainLogger
from st_rl.utils.config import ConfigError
from tests.st_rl.distributed.spawn import run_ranks
from tests.st_rl.image_env import ImageTargetEnv
from tests.st_rl.rollouts import collect_rollout
from tests.st_rl.segments_env import SegmentsEnv

pytestmark = pytest.mark.timeout(120)

K = 2.0  # the teacher's gain
VISUAL = {"channels": [8, 8], "kernel_sizes": [3, 3], "strides": [2, 2], "hidden_sizes": [16]}


class OracleEnv(VecEnv):
    """The layout an oracle teacher was trained on: observation ``proprio (2,)``, ``target (2,)``; with
    ``critic_height_map`` a privileged observation adding ``height_map`` (a critic-only segment of the run).
    Only its layout and config are used (the runner saves a run from it without stepping)."""

    def __init__(self, critic_height_map: bool = False, action_scale: float | None = None) -> None:
        self.num_envs, self.num_actions, self.max_episode_length = 2, 2, 30
        self.device = torch.device("cpu")
        self.cfg = {"num_envs": 2, **({} if action_scale is None else {"control": {"action_scale": action_scale}})}
        self.obs_segments = OrderedDict([("proprio", (2,)), ("target", (2,))])
        self.num_obs = 4
        self.privileged_obs_segments = None
        self.num_privileged_obs = None
        if critic_height_map:
            self.privileged_obs_segments = OrderedDict([*self.obs_segments.items(), ("height_map", (1, 3, 4))])
            self.num_privileged_obs = 16
        self.episode_length_buf = torch.zeros(2, dtype=torch.long)

    def get_observations(self) -> torch.Tensor:
        return torch.zeros(self.num_envs, self.num_obs)

    def get_privileged_observations(self) -> torch.Tensor | None:
        return None if self.num_privileged_obs is None else torch.zeros(self.num_envs, self.num_privileged_obs)

    def reset(self):
        return self.get_observations(), self.get_privileged_observations()

    def step(self, actions):
        raise NotImplementedError


ENCODED_TARGET = {  # a teacher that encodes its target into a 6-wide latent
    "class_name": "EncoderActorCritic",
    "encoder_component_names": ["target"],
    "encoder_kwargs": {"hidden_sizes": [8]},
    "encoder_output_size": 6,
    "actor_hidden_dims": [8],
}


def save_teacher_run(path, recurrent: bool = False, policy: dict | None = None, **env_kwargs) -> str:
    """A run directory (config.json + model_0.pt, written by the runner) of the linear expert; ``recurrent``: a
    GRU policy with random weights instead; ``policy``: that policy config, random weights."""
    random_weights = recurrent or policy is not None
    policy = {"actor_hidden_dims": [], "critic_hidden_dims": [8], "init_noise_std": 0.1, **(policy or {})}
    if recurrent:
        policy.update(class_name="ActorCriticRecurrent", actor_hidden_dims=[8], rnn_hidden_size=8)
    cfg = {"policy": policy, "runner": {"print_progress": False}}
    runner = OnPolicyRunner(OracleEnv(**env_kwargs), cfg, log_dir=str(path))
    if random_weights:
        runner.learn(0)
        return str(path)
    with torch.no_grad():
        runner.alg.policy.actor[0].weight.copy_(K * torch.tensor([[-1.0, 0, 1, 0], [0, -1, 0, 1]]))
        runner.alg.policy.actor[0].bias.zero_()
    runner.learn(0)
    return str(path)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory) -> str:
    return save_teacher_run(tmp_path_factory.mktemp("runs") / "teacher")


def expert(env: ImageTargetEnv) -> torch.Tensor:
    """``(N, 2)`` the teacher's action in the env's current state."""
    return K * (env.target - env.pos)


class RecordingEnv(ImageTargetEnv):
    """Records each step's executed actions and the expert's action in the state they were taken in."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.executed, self.expert, self.oracle_obs = [], [], []

    def step(self, actions):
        self.executed.append(actions.clone())
        self.expert.append(expert(self))
        self.oracle_obs.append(torch.cat([self.pos, self.target], dim=-1))  # what the teacher reads
        return super().step(actions)


def student(env: VecEnv, cls=VisualDeterministicAC, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    kwargs = {"actor_hidden_dims": [32], "critic_hidden_dims": [16], "init_noise_std": 0.5}
    if cls is not ActorCritic:
        kwargs.update(visual_component_name="image", visual_kwargs=VISUAL, visual_latent_size=6)
    kwargs.update(overrides)
    if cls is VisualDeterministicRecurrent:
        kwargs.setdefault("rnn_hidden_size", 16)
    critic = env.num_privileged_obs if env.num_privileged_obs is not None else env.num_obs
    return cls(env.num_obs, critic, env.num_actions, obs_segments=env.obs_segments,
               privileged_obs_segments=env.privileged_obs_segments, **kwargs)  # fmt: skip


def make_tppo(env: VecEnv, teacher_run: str, policy=None, steps: int = 8, **kwargs) -> TPPO:
    kwargs = {"num_learning_epochs": 2, "num_mini_batches": 2, "learning_rate": 1e-3, **kwargs}
    alg = TPPO(policy if policy is not None else student(env), teacher_run=teacher_run, **kwargs)
    critic = (env.num_privileged_obs,) if env.num_privileged_obs is not None else None
    alg.init_storage(env.num_envs, steps, (env.num_obs,), critic, (env.num_actions,))
    return alg


def teacher_acted(alg: TPPO) -> torch.Tensor:
    """``(T, N)`` whether the executed action was the teacher's (a student's action never equals it exactly)."""
    return (alg.storage.actions == alg.storage.labels[TEACHER_ACTIONS]).all(dim=-1)


# --- acting --------------------------------------------------------------------------------------------------------
def test_with_teacher_act_prob_one_the_executed_actions_are_the_teachers(teacher_run):
    env = RecordingEnv(num_envs=8, privileged=True, seed=1)
    alg = make_tppo(env, teacher_run, teacher_act_prob=1.0)
    collect_rollout(alg, env, 8)
    executed, wanted = torch.stack(env.executed), torch.stack(env.expert)
    torch.testing.assert_close(executed, wanted, rtol=0, atol=1e-6)  # target came from the privileged observation
    torch.testing.assert_close(alg.storage.labels[TEACHER_ACTIONS], wanted, rtol=0, atol=1e-6)


def test_with_teacher_act_prob_zero_the_student_acts_and_the_teacher_still_labels(teacher_run):
    env = RecordingEnv(num_envs=8, privileged=True, seed=2)
    alg = make_tppo(env, teacher_run, teacher_act_prob=0.0)
    collect_rollout(alg, env, 8)
    storage = alg.storage
    torch.testing.assert_close(torch.stack(env.executed), storage.mu)  # the deterministic student's means
    torch.testing.assert_close(storage.labels[TEACHER_ACTIONS], torch.stack(env.expert), rtol=0, atol=1e-6)
    assert not teacher_acted(alg).any()


def test_a_mutex_run_is_a_teacher_too(teacher_run, tmp_path):
    mutex = tmp_path / "mutex"
    mutex.mkdir()
    policy = {"class_name": "ActorCriticMutex", "sub_policy_paths": [teacher_run]}
    (mutex / "config.json").write_text(json.dumps({"policy": policy, "env": {}}))
    env = RecordingEnv(num_envs=4, privileged=True, seed=3)
    alg = make_tppo(env, str(mutex), teacher_act_prob=1.0)
    collect_rollout(alg, env, 4)
    torch.testing.assert_close(torch.stack(env.executed), torch.stack(env.expert), rtol=0, atol=1e-6)


def test_under_ppo_the_stored_log_prob_is_that_of_the_executed_action(teacher_run):
    env = ImageTargetEnv(num_envs=16, privileged=True, seed=11)
    alg = make_tppo(env, teacher_run, policy=student(env, ActorCritic), using_ppo=True, teacher_act_prob=0.5)
    collect_rollout(alg, env, 8)
    s = alg.storage
    assert 0 < teacher_acted(alg).float().mean() < 1
    log_prob = torch.distributions.Normal(s.mu, s.sigma).log_prob(s.actions).sum(-1, keepdim=True)
    torch.testing.assert_close(s.actions_log_prob, log_prob)  # the ratio compares what the env saw
    assert (s.values != 0).all()  # the critic ran


def test_a_recurrent_teachers_memory_restarts_with_each_episode_and_is_kept_for_resume(tmp_path):
    run = save_teacher_run(tmp_path / "gru", recurrent=True)
    env = RecordingEnv(num_envs=4, max_episode_length=3, privileged=True, seed=12)
    alg = make_tppo(env, run)
    collect_rollout(alg, env, 8)
    by_hand = load_policy_from_run(run)
    wanted = []
    with torch.no_grad():
        for t in range(8):
            wanted.append(by_hand.act_inference(env.oracle_obs[t]))
            by_hand.reset(alg.storage.dones[t, :, 0])
    torch.testing.assert_close(alg.storage.labels[TEACHER_ACTIONS], torch.stack(wanted))
    state = alg.rollout_state()
    assert state["teacher/memory_a"].shape == (4, 1, 8)  # env axis first
    other = make_tppo(env, run)
    other.load_rollout_state(state)
    torch.testing.assert_close(other.teacher.memory_a.hidden_states, alg.teacher.memory_a.hidden_states)


def test_the_teachers_actions_are_converted_to_the_env_action_scale(tmp_path):
    run = save_teacher_run(tmp_path / "scaled", action_scale=0.5)  # the env has none: scale 1
    env = RecordingEnv(num_envs=4, privileged=True, seed=4)
    alg = make_tppo(env, run, teacher_act_prob=1.0)
    collect_rollout(alg, env, 2)
    torch.testing.assert_close(torch.stack(env.executed), 0.5 * torch.stack(env.expert), rtol=0, atol=1e-6)


# --- the DAgger schedule --------------------------------------------------------------------------------------------
def test_schedules():
    assert teacher_act_prob_at(7, 0.8, 0.1, "constant", 4) == 0.8
    assert teacher_act_prob_at(2, 1.0, 0.0, "linear", 4) == 0.5
    assert teacher_act_prob_at(9, 1.0, 0.2, "linear", 4) == pytest.approx(0.2)
    assert teacher_act_prob_at(4, 1.0, 0.2, "exp", 4) == pytest.approx(0.2 + 0.8 * math.exp(-1))
    assert teacher_act_prob_at(0, 1.0, 0.2, "exp", 4) == 1.0


def test_dagger_hands_over_to_the_student_as_the_schedule_decays(teacher_run):
    env = ImageTargetEnv(num_envs=64, privileged=True, seed=5)
    alg = make_tppo(env, teacher_run, teacher_act_prob=1.0, teacher_act_prob_schedule="linear",
                    teacher_act_prob_final=0.0, teacher_act_prob_decay_iterations=4)  # fmt: skip
    torch.manual_seed(0)
    for it, p in enumerate([1.0, 0.75, 0.5, 0.25, 0.0]):
        alg.set_learning_iteration(it)
        collect_rollout(alg, env, 8)
        measured = float(teacher_acted(alg).float().mean())  # 512 steps: binomial std <= 0.022
        info = alg.update()
        assert info["teacher_act_prob"] == p
        assert measured == pytest.approx(p, abs=0.08), it
        assert info["teacher_act_fraction"] == pytest.approx(measured)


# --- learning ------------------------------------------------------------------------------------------------------
def imitation_error(alg: TPPO, seed: int) -> float:
    """Mean ``|student - teacher|`` of the student's own actions on a fresh rollout."""
    env = ImageTargetEnv(num_envs=32, privileged=True, seed=seed)
    errors = []
    with torch.inference_mode():
        for _ in range(10):
            obs = env.get_observations()
            actions = alg.policy.act_inference(obs)
            errors.append((actions - expert(env)).abs().mean())
            env.step(actions)
    return float(torch.stack(errors).mean())


def test_distillation_loss_falls_and_the_student_imitates_the_teacher_from_the_image(teacher_run):
    env = ImageTargetEnv(num_envs=16, privileged=True, seed=6)
    alg = make_tppo(env, teacher_run, steps=16, teacher_act_prob=1.0, num_learning_epochs=4, learning_rate=3e-3)
    before = imitation_error(alg, seed=60)
    losses = []
    for _ in range(25):
        collect_rollout(alg, env, 16)
        losses.append(alg.update()["distill"])
    after = imitation_error(alg, seed=60)
    # Measured: imitation error 1.47 -> 0.29; the loss of a rollout depends on its phase of the episodes (noisy)
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5]), losses
    assert after < 0.4 * before, (before, after)


@pytest.mark.parametrize("kind", ["mse", "l1", "nll"])
def test_distillation_loss_formulas(teacher_run, kind):
    env = ImageTargetEnv(num_envs=8, privileged=True, seed=7)
    alg = make_tppo(env, teacher_run, policy=student(env, ActorCritic), distill_loss=kind, teacher_act_prob=0.5)
    collect_rollout(alg, env, 8)
    batch = next(alg.storage.mini_batch_generator(1))
    losses, _ = alg.compute_losses(batch)
    mean, std, labels = alg.policy.action_mean, alg.policy.action_std, batch.labels[TEACHER_ACTIONS]
    hand = {
        "mse": (mean - labels).pow(2).mean(),
        "l1": (mean - labels).abs().mean(),
        "nll": (((labels - mean) / std).pow(2) / 2 + std.log() + 0.5 * math.log(2 * math.pi)).sum(-1).mean(),
    }[kind]
    torch.testing.assert_close(losses["distill"], hand)
    assert set(losses) == {"distill"}


def test_recurrent_student_replays_its_trajectories(teacher_run):
    env = ImageTargetEnv(num_envs=4, max_episode_length=5, privileged=True, seed=8)
    alg = make_tppo(env, teacher_run, policy=student(env, VisualDeterministicRecurrent), teacher_act_prob=0.5)
    fresh = copy.deepcopy(alg.policy)
    collect_rollout(alg, env, 8)
    storage = alg.storage
    assert storage.dones[:-1].any()  # a reset inside the rollout: two trajectories in one env
    torch.manual_seed(3)
    batch = next(storage.recurrent_mini_batch_generator(1))
    losses, _ = alg.compute_losses(batch)
    means = []  # by hand: step the student from the rollout's start, resetting where episodes ended
    with torch.no_grad():
        for t in range(8):
            means.append(fresh.act_inference(storage.observations[t]))
            fresh.reset(storage.dones[t, :, 0])
    hand = (torch.stack(means) - storage.labels[TEACHER_ACTIONS]).pow(2).mean()
    torch.testing.assert_close(losses["distill"], hand)
    info = alg.update()
    assert math.isfinite(info["distill"]) and set(alg.loss_coefs) == {"distill"}


def test_latent_distillation_regresses_the_students_image_latent_onto_the_teachers_target_latent(tmp_path):
    run = save_teacher_run(tmp_path / "encoder", policy=ENCODED_TARGET)
    env = RecordingEnv(num_envs=16, privileged=True, seed=13)
    alg = make_tppo(env, run, steps=16, latent_distill={"image": "target"}, distill_coef=0.0, learning_rate=3e-3)
    collect_rollout(alg, env, 16)
    teacher = load_policy_from_run(run)
    with torch.no_grad():
        wanted = torch.stack([teacher.get_encoder_latent(o, "target") for o in env.oracle_obs])
    torch.testing.assert_close(alg.storage.labels["teacher_latent/image"], wanted)
    batch = next(alg.storage.mini_batch_generator(1))
    losses, _ = alg.compute_losses(batch)
    hand = (alg.policy.embed_visual_latent(batch.observations) - batch.labels["teacher_latent/image"]).pow(2).mean()
    torch.testing.assert_close(losses["latent"], hand)
    first = alg.update()["latent"]
    for _ in range(10):
        collect_rollout(alg, env, 16)
        last = alg.update()["latent"]
    assert last < 0.5 * first, (first, last)


def test_latent_distillation_with_a_recurrent_student_unpads_its_trajectories(tmp_path):
    run = save_teacher_run(tmp_path / "encoder", policy=ENCODED_TARGET)
    env = ImageTargetEnv(num_envs=4, max_episode_length=5, privileged=True, seed=14)
    policy = student(env, VisualDeterministicRecurrent)
    alg = make_tppo(env, run, policy=policy, latent_distill={"image": "target"})
    collect_rollout(alg, env, 8)
    assert alg.storage.dones[:-1].any()
    batch = next(alg.storage.recurrent_mini_batch_generator(1))
    losses, _ = alg.compute_losses(batch)
    storage = alg.storage  # the encoder is feed-forward: its latents of the stored observations, in rollout order
    hand = (policy.embed_visual_latent(storage.observations) - storage.labels["teacher_latent/image"]).pow(2).mean()
    torch.testing.assert_close(losses["latent"], hand)


def test_latent_distillation_misuse(tmp_path, teacher_run):
    run = save_teacher_run(tmp_path / "encoder", policy=ENCODED_TARGET)
    env = ImageTargetEnv(num_envs=4, privileged=True)
    wide = student(env, visual_latent_size=5)
    one_line_error(lambda: make_tppo(env, run, policy=wide, latent_distill={"image": "target"}), "5", "6", "'image'")
    one_line_error(lambda: make_tppo(env, run, latent_distill={"image": "proprio"}), "teacher", "'proprio'")
    one_line_error(lambda: make_tppo(env, run, latent_distill={"height_map": "target"}), "student", "'height_map'")
    one_line_error(lambda: make_tppo(env, teacher_run, latent_distill={"image": "target"}), "teacher", "'target'")


# --- through the runner: logs, PPO on top, checkpoints ---------------------------------------------------------------
@pytest.fixture
def logged(monkeypatch) -> list[dict[str, float]]:
    """Every iteration's scalars, as the runner logs them (TensorBoard keys)."""
    iterations: list[dict[str, float]] = []

    def record(self, key, value, step):
        if len(iterations) < step:
            iterations.append({})
        iterations[step - 1][key] = value

    monkeypatch.setattr(TrainLogger, "_scalar", record)
    return iterations


def runner_cfg(teacher_run: str, **algorithm) -> dict:
    return {
        "policy": {"class_name": "ActorCritic", "actor_hidden_dims": [32], "critic_hidden_dims": [16]},
        "algorithm": {"class_name": "TPPO", "teacher_run": teacher_run, "num_mini_batches": 2, **algorithm},
        "runner": {"num_steps_per_env": 8, "print_progress": False, "save_interval": 100},
    }


def test_using_ppo_trains_both_losses_and_logs_them(teacher_run, logged):
    env = ImageTargetEnv(num_envs=16, privileged=True, seed=9)
    cfg = runner_cfg(teacher_run, using_ppo=True, distill_coef=5.0, schedule="adaptive", learning_rate=3e-3)
    runner = OnPolicyRunner(env, cfg)
    before = imitation_error(runner.alg, seed=90)
    runner.learn(8)
    losses = ("Loss/surrogate", "Loss/value_function", "Loss/entropy", "Loss/distill")
    policy = ("Policy/teacher_act_prob", "Policy/teacher_act_fraction", "Policy/explained_variance")
    for key in (*losses, *policy, "Perf/total_fps", "Perf/collection_time"):
        assert all(math.isfinite(it[key]) for it in logged), key
    assert runner.alg.loss_coefs["distill"] == 5.0 and runner.alg.loss_coefs["surrogate"] == 1.0
    # Measured (env seeds 9, 1, 2): imitation error 1.46 -> 1.03-1.11; without the distillation term 1.75-1.91
    assert imitation_error(runner.alg, seed=90) < 0.85 * before


def test_schedule_follows_iterations_and_resumes_without_teacher_in_checkpoint(teacher_run, tmp_path, logged):
    env = ImageTargetEnv(num_envs=8, privileged=True, seed=10)
    cfg = runner_cfg(teacher_run, teacher_act_prob_schedule="linear", teacher_act_prob_decay_iterations=4)
    runner = OnPolicyRunner(env, cfg, log_dir=str(tmp_path))
    runner.learn(2)
    checkpoint = torch.load(tmp_path / "model_2.pt", weights_only=True)
    assert set(checkpoint["model_state_dict"]) == set(runner.alg.policy.state_dict())  # the student's only
    resumed = OnPolicyRunner(ImageTargetEnv(num_envs=8, privileged=True, seed=10), cfg, log_dir=str(tmp_path))
    resumed.load(str(tmp_path / "model_2.pt"))
    resumed.learn(2)
    assert [it["Policy/teacher_act_prob"] for it in logged] == [1.0, 0.75, 0.5, 0.25]
    assert "Policy/explained_variance" not in logged[0]  # pure DAgger trains no critic
    assert {k for k in logged[0] if k.startswith("Loss/")} == {"Loss/distill", "Loss/learning_rate"}


def two_rank_update(ctx, teacher_run: str) -> dict:
    env = ImageTargetEnv(num_envs=8, privileged=True, seed=20 + ctx.rank)  # each rank its own envs
    alg = make_tppo(env, teacher_run, policy=student(env, seed=ctx.rank), dist=ctx)
    ctx.broadcast_module(alg.policy)
    collect_rollout(alg, env, 8)
    alg.update()
    return {name: t.detach().numpy().copy() for name, t in alg.policy.state_dict().items()}


def test_two_ranks_train_one_student(teacher_run):
    ranks = run_ranks(two_rank_update, teacher_run)
    for name in ranks[0]:
        np.testing.assert_array_equal(ranks[0][name], ranks[1][name], err_msg=name)


# --- misuse: one line naming the thing -------------------------------------------------------------------------------
def one_line_error(build, *names: str) -> str:
    with pytest.raises(ConfigError) as info:
        build()
    message = str(info.value)
    assert "\n" not in message
    for name in names:
        assert name in message, (name, message)
    return message


def test_tppo_without_a_teacher_run(tmp_path):
    env = ImageTargetEnv(num_envs=4, privileged=True)
    cfg = runner_cfg(None)
    del cfg["algorithm"]["teacher_run"]
    one_line_error(lambda: OnPolicyRunner(env, cfg), "TPPO", "algorithm.teacher_run")


def test_a_teacher_run_that_does_not_exist(tmp_path):
    env = ImageTargetEnv(num_envs=4, privileged=True)
    one_line_error(lambda: make_tppo(env, str(tmp_path / "nope")), "algorithm.teacher_run", "nope", "no such run")
    one_line_error(lambda: make_tppo(env, str(tmp_path)), str(tmp_path), "no config.json")


def test_a_teacher_checkpoint_that_does_not_exist(teacher_run):
    env = ImageTargetEnv(num_envs=4, privileged=True)
    one_line_error(lambda: make_tppo(env, teacher_run, teacher_checkpoint=7), teacher_run, "checkpoint 7", "0")


def test_a_teacher_whose_segments_the_env_cannot_provide(teacher_run):
    env = ImageTargetEnv(num_envs=4, privileged=False)  # no privileged observation: no target
    message = one_line_error(lambda: make_tppo(env, teacher_run), "teacher", "target (2,)")
    assert "proprio" not in message.split("privileged observation:")[1].split("(")[0]  # names only the missing


def test_a_student_that_reads_a_privileged_segment(teacher_run, tmp_path):
    env = ImageTargetEnv(num_envs=4, privileged=True)
    one_line_error(lambda: make_tppo(env, teacher_run, privileged_segments=["height_map"]), "height_map", "student")
    critic_run = save_teacher_run(tmp_path / "critic_height_map", critic_height_map=True)  # critic-only segment
    one_line_error(lambda: make_tppo(env, critic_run), "privileged segment(s) height_map")
    oracle = SegmentsEnv(num_envs=4)  # its observation has a height_scan
    one_line_error(lambda: make_tppo(oracle, teacher_run, policy=student(oracle, ActorCritic)), "height_scan")


def test_option_combinations_that_cannot_work(teacher_run):
    env = ImageTargetEnv(num_envs=4, privileged=True)
    one_line_error(lambda: make_tppo(env, teacher_run, distill_loss="nll"), "nll", "VisualDeterministicAC")
    one_line_error(lambda: make_tppo(env, teacher_run, schedule="adaptive"), "adaptive", "using_ppo")
    symmetry = {"data_augmentation": True, "mirror_loss_coef": 0.0}
    one_line_error(lambda: make_tppo(env, teacher_run, symmetry=symmetry), "symmetry")


@pytest.mark.parametrize(
    ("key", "value", "names"),
    [
        ("teacher_act_prob", 1.5, ["algorithm.teacher_act_prob", "[0, 1]", "1.5"]),
        ("teacher_act_prob_schedule", "cosine", ["algorithm.teacher_act_prob_schedule", "'cosine'", "linear"]),
        ("distill_loss", "huber", ["algorithm.distill_loss", "'huber'", "nll"]),
        ("teacher_act_prob_decay_iterations", 0, ["algorithm.teacher_act_prob_decay_iterations", ">= 1"]),
        ("distill_coef", -1.0, ["algorithm.distill_coef", ">= 0"]),
    ],
)
def test_bad_values_fail_when_the_config_is_resolved(key, value, names):
    cfg = {"algorithm": {"class_name": "TPPO", key: value}}
    one_line_error(lambda: resolve_train_cfg(cfg, "distill.yaml"), "distill.yaml", *names)

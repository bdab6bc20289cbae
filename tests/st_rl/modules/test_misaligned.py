from collections import OrderedDict

import pytest
import torch

from st_rl.modules import ActorCritic, load_policy_from_run
from st_rl.modules.actor_critic_recurrent import ActorCriticRecurrent
from st_rl.modules.misaligned import load_misaligned_from_run, load_misaligned_state_dict
from st_rl.runners import OnPolicyRunner
from st_rl.utils.obs_segments import get_obs_slice, segments_num_obs
from tests.st_rl.dummy_env import PointMassEnv

NORMALISER_BUFFERS = [f"{side}_obs_normalizer.{b}" for side in ("actor", "critic") for b in ("_mean", "_var", "_std")]


def segs(*items) -> OrderedDict:
    return OrderedDict(items)


def make_policy(cls, obs_segments, critic_segments, seed, **kwargs):
    torch.manual_seed(seed)
    return cls(
        num_actor_obs=segments_num_obs(obs_segments),
        num_critic_obs=segments_num_obs(critic_segments),
        num_actions=2,
        actor_hidden_dims=kwargs.pop("actor_hidden_dims", [8]),
        critic_hidden_dims=[8],
        obs_normalization=True,
        obs_segments=obs_segments,
        privileged_obs_segments=critic_segments,
        **kwargs,
    )


def fill_normalizers(policy, seed: int = 0) -> None:
    """Non-trivial statistics: every column with its own mean and scale."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(3):
        obs = torch.randn(16, policy.num_actor_obs, generator=g) * torch.arange(1.0, policy.num_actor_obs + 1) + 3.0
        critic_obs = torch.randn(16, policy.num_critic_obs, generator=g) * 2.0 - torch.arange(policy.num_critic_obs)
        policy.update_normalization(obs, critic_obs)


def segment_values(layouts, n: int = 6, seed: int = 1) -> dict[str, torch.Tensor]:
    """One random ``(n, size)`` block per segment name (the same name gets the same values in every layout)."""
    g = torch.Generator().manual_seed(seed)
    names = sorted({name for layout in layouts for name in layout})
    return {name: torch.randn(n, 64, generator=g) * 3 + 1 for name in names}


def flat_obs(values: dict[str, torch.Tensor], layout) -> torch.Tensor:
    return torch.cat([values[name][:, : segments_num_obs({name: shape})] for name, shape in layout.items()], dim=-1)


@torch.no_grad()
def zero_columns(tensor: torch.Tensor, layout, name: str) -> None:
    tensor[..., get_obs_slice(layout, name)[0]] = 0.0


def assert_columns_copied(target_policy, source_policy, names, segment_names) -> None:
    target_state, source_state = target_policy.state_dict(), source_policy.state_dict()
    target_layouts, source_layouts = target_policy.obs_layouts(), source_policy.obs_layouts()
    for name in names:
        for seg in segment_names:
            t = target_state[name][..., get_obs_slice(target_layouts[name], seg)[0]]
            s = source_state[name][..., get_obs_slice(source_layouts[name], seg)[0]]
            torch.testing.assert_close(t, s, rtol=0, atol=0, msg=f"{name} segment {seg}")


# Source: segments a, b, c (critic also p); target: reordered, b removed.
SRC_OBS = segs(("a", (3,)), ("b", (2,)), ("c", (4,)))
SRC_CRITIC = segs(("a", (3,)), ("b", (2,)), ("c", (4,)), ("p", (2,)))
TGT_OBS = segs(("c", (4,)), ("a", (3,)))
TGT_CRITIC = segs(("p", (2,)), ("c", (4,)), ("a", (3,)))


def test_reordered_and_removed_segments_columns_and_outputs():
    source = make_policy(ActorCritic, SRC_OBS, SRC_CRITIC, seed=0)
    fill_normalizers(source)
    # The removed segment b must not contribute for the outputs to be comparable.
    zero_columns(source.actor[0].weight, SRC_OBS, "b")
    zero_columns(source.critic[0].weight, SRC_CRITIC, "b")
    target = make_policy(ActorCritic, TGT_OBS, TGT_CRITIC, seed=1)

    report = load_misaligned_state_dict(target, source.state_dict(), source.obs_layouts(), strict=True)

    layout_tensors = ["actor.0.weight", "critic.0.weight", *NORMALISER_BUFFERS]
    assert sorted(report.remapped) == sorted(layout_tensors)
    for name in layout_tensors:
        assert report.remapped[name].dropped == ["b"], name
        assert report.remapped[name].new == [] and report.remapped[name].shape_changed == {}
    assert report.remapped["actor.0.weight"].copied == ["c", "a"]
    assert report.remapped["critic.0.weight"].copied == ["p", "c", "a"]
    assert {"actor.0.bias", "actor.2.weight", "std", "actor_obs_normalizer.count"} <= set(report.loaded)
    assert report.unmatched == {} and report.unused == [] and report.complete
    # Column level: every shared segment's columns hold the source's values.
    assert_columns_copied(target, source, ["actor.0.weight", "actor_obs_normalizer._mean"], ["a", "c"])
    assert_columns_copied(target, source, ["critic.0.weight", "critic_obs_normalizer._std"], ["a", "c", "p"])
    assert target.actor_obs_normalizer.count.item() == 48
    # Functional: the same segment values give the same actions and values.
    values = segment_values([SRC_CRITIC, TGT_CRITIC])
    with torch.no_grad():
        torch.testing.assert_close(
            target.act_inference(flat_obs(values, TGT_OBS)), source.act_inference(flat_obs(values, SRC_OBS))
        )
        torch.testing.assert_close(
            target.evaluate(flat_obs(values, TGT_CRITIC)), source.evaluate(flat_obs(values, SRC_CRITIC))
        )
    assert "complete" in report.summary()


def test_added_segment_keeps_initial_values_and_is_reported_new():
    source = make_policy(ActorCritic, SRC_OBS, SRC_CRITIC, seed=0)
    fill_normalizers(source)
    target_obs = segs(("a", (3,)), ("d", (2,)), ("b", (2,)), ("c", (4,)))
    target = make_policy(ActorCritic, target_obs, segs(("d", (2,)), *SRC_CRITIC.items()), seed=1)
    initial = {k: v.clone() for k, v in target.state_dict().items()}

    report = load_misaligned_state_dict(target, source.state_dict(), source.obs_layouts())

    assert not report.complete
    for name in ["actor.0.weight", "critic.0.weight", *NORMALISER_BUFFERS]:
        assert report.remapped[name].new == ["d"] and report.remapped[name].dropped == [], name
    assert report.remapped["actor.0.weight"].copied == ["a", "b", "c"]
    assert "new d" in report.summary() and "INCOMPLETE" in report.summary()
    d_cols = get_obs_slice(target_obs, "d")[0]
    torch.testing.assert_close(target.actor[0].weight[:, d_cols], initial["actor.0.weight"][:, d_cols])
    assert not torch.equal(target.actor[0].weight, initial["actor.0.weight"])
    torch.testing.assert_close(target.actor_obs_normalizer._mean[:, d_cols], torch.zeros(1, 2))
    torch.testing.assert_close(target.actor_obs_normalizer._var[:, d_cols], torch.ones(1, 2))
    torch.testing.assert_close(target.actor_obs_normalizer._std[:, d_cols], torch.ones(1, 2))
    assert_columns_copied(target, source, ["actor.0.weight", *NORMALISER_BUFFERS[:3]], ["a", "b", "c"])
    # A zero d (mean 0, std 1: normalised to zero) contributes nothing: outputs equal the source's.
    values = segment_values([SRC_OBS])
    values["d"] = torch.zeros(6, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            target.act_inference(flat_obs(values, target_obs)), source.act_inference(flat_obs(values, SRC_OBS))
        )
    with pytest.raises(ValueError, match=r"strict.*actor\.0\.weight \(segments d\)"):
        load_misaligned_state_dict(target, source.state_dict(), source.obs_layouts(), strict=True)


def test_segment_with_changed_shape_is_reported_and_left_at_init():
    source_obs = segs(("a", (3,)), ("b", (2,)), ("scan", (2, 3)))
    target_obs = segs(("scan", (3, 2)), ("a", (3,)), ("b", (3,)))
    source = make_policy(ActorCritic, source_obs, source_obs, seed=0)
    fill_normalizers(source)
    target = make_policy(ActorCritic, target_obs, target_obs, seed=1)
    initial = target.actor[0].weight.detach().clone()

    report = load_misaligned_state_dict(target, source.state_dict(), source.obs_layouts())

    remap = report.remapped["actor.0.weight"]
    assert remap.copied == ["a"] and remap.new == []
    assert remap.shape_changed == {"scan": ((2, 3), (3, 2)), "b": ((2,), (3,))}
    assert "shape changed scan (2, 3) -> (3, 2), b (2,) -> (3,)" in report.summary()
    assert not report.complete
    for seg in ("scan", "b"):
        cols = get_obs_slice(target_obs, seg)[0]
        torch.testing.assert_close(target.actor[0].weight[:, cols], initial[:, cols])
        torch.testing.assert_close(target.actor_obs_normalizer._mean[:, cols], torch.zeros_like(initial[:1, cols]))
    assert_columns_copied(target, source, ["actor.0.weight", "critic_obs_normalizer._var"], ["a"])


@pytest.mark.parametrize("rnn_type, num_layers", [("gru", 2), ("lstm", 1)])
def test_recurrent_memory_input_weights_remapped(rnn_type, num_layers):
    kwargs = {"rnn_type": rnn_type, "rnn_hidden_size": 6, "rnn_num_layers": num_layers}
    source = make_policy(ActorCriticRecurrent, SRC_OBS, SRC_CRITIC, seed=0, **kwargs)
    fill_normalizers(source)
    zero_columns(source.memory_a.rnn.weight_ih_l0, SRC_OBS, "b")
    zero_columns(source.memory_c.rnn.weight_ih_l0, SRC_CRITIC, "b")
    target = make_policy(ActorCriticRecurrent, TGT_OBS, TGT_CRITIC, seed=1, **kwargs)

    report = load_misaligned_state_dict(target, source.state_dict(), source.obs_layouts(), strict=True)

    assert report.complete and report.unused == []
    assert report.remapped["memory_a.rnn.weight_ih_l0"].copied == ["c", "a"]
    assert report.remapped["memory_c.rnn.weight_ih_l0"].dropped == ["b"]
    # The actor MLP sees the memory output: same layout, loaded as is.
    assert {"actor.0.weight", "memory_a.rnn.weight_hh_l0", "memory_a.rnn.bias_ih_l0"} <= set(report.loaded)
    if num_layers == 2:
        assert "memory_a.rnn.weight_ih_l1" in report.loaded
    assert_columns_copied(target, source, ["memory_a.rnn.weight_ih_l0"], ["a", "c"])
    assert_columns_copied(target, source, ["memory_c.rnn.weight_ih_l0"], ["a", "c", "p"])
    with torch.no_grad():
        for step in range(3):  # rollout mode: the memories advance step by step
            values = segment_values([SRC_CRITIC], seed=10 + step)
            torch.testing.assert_close(
                target.act_inference(flat_obs(values, TGT_OBS)), source.act_inference(flat_obs(values, SRC_OBS))
            )
            torch.testing.assert_close(
                target.evaluate(flat_obs(values, TGT_CRITIC)), source.evaluate(flat_obs(values, SRC_CRITIC))
            )


class ReorderedPointMassEnv(PointMassEnv):
    """PointMassEnv with the segments in another order: obs ``target, pos``; critic ``dist, target, pos``."""

    def __init__(self, **kwargs) -> None:
        super().__init__(privileged=True, **kwargs)
        self.obs_segments = segs(("target", (2,)), ("pos", (2,)))
        self.privileged_obs_segments = segs(("dist", (1,)), ("target", (2,)), ("pos", (2,)))

    def get_observations(self) -> torch.Tensor:
        return torch.cat([self.target, self.pos], dim=-1)

    def get_privileged_observations(self) -> torch.Tensor:
        dist = (self.pos - self.target).norm(dim=-1, keepdim=True)
        return torch.cat([dist, self.target, self.pos], dim=-1)


def test_load_from_run_dir_into_env_with_reordered_segments(tmp_path):
    cfg = {
        "policy": {"actor_hidden_dims": [8], "critic_hidden_dims": [8], "obs_normalization": True},
        "runner": {"num_steps_per_env": 4, "print_progress": False},
    }
    run_dir = tmp_path / "2024-01-01_00-00-00_src"
    OnPolicyRunner(PointMassEnv(num_envs=4, privileged=True), cfg, log_dir=str(run_dir)).learn(1)
    env, reordered_env = PointMassEnv(num_envs=4, privileged=True, seed=3), ReorderedPointMassEnv(num_envs=4, seed=3)
    target = OnPolicyRunner(reordered_env, {**cfg, "runner": {**cfg["runner"], "seed": 7}}).alg.policy

    report = load_misaligned_from_run(target, run_dir, strict=True)

    assert report.complete and report.unused == []
    assert report.remapped["actor.0.weight"].copied == ["target", "pos"]
    assert report.remapped["critic_obs_normalizer._mean"].copied == ["dist", "target", "pos"]
    source = load_policy_from_run(str(run_dir))
    assert target.actor_obs_normalizer.count.item() == source.actor_obs_normalizer.count.item() == 16
    assert not torch.equal(source.actor_obs_normalizer.mean, torch.zeros(4))
    with torch.no_grad():
        torch.testing.assert_close(
            target.act_inference(reordered_env.get_observations()), source.act_inference(env.get_observations())
        )
        torch.testing.assert_close(
            target.evaluate(reordered_env.get_privileged_observations()),
            source.evaluate(env.get_privileged_observations()),
        )


def test_strict_raises_and_leaves_policy_unchanged():
    source = make_policy(ActorCritic, SRC_OBS, SRC_CRITIC, seed=0)
    fill_normalizers(source)
    target = make_policy(ActorCritic, segs(("a", (3,)), ("e", (1,))), SRC_CRITIC, seed=1, actor_hidden_dims=[5])
    before = {k: v.clone() for k, v in target.state_dict().items()}

    with pytest.raises(ValueError) as info:
        load_misaligned_state_dict(target, source.state_dict(), source.obs_layouts(), strict=True)

    message = str(info.value)
    assert "\n" not in message
    assert "actor.0.weight (shape (5, 4) but (8, 9) in the checkpoint (leading dims differ))" in message
    assert "actor_obs_normalizer._mean (segments e)" in message
    for name, value in target.state_dict().items():
        assert torch.equal(value, before[name]), name
    # Non-strict: the same load goes through partially, and the report says what was left out.
    report = load_misaligned_state_dict(target, source.state_dict(), source.obs_layouts())
    assert "actor.0.weight" in report.unmatched and "actor.0.weight" in report.unused
    assert "critic.0.weight" in report.loaded  # the critic's layout did not change
    assert_columns_copied(target, source, ["actor_obs_normalizer._mean"], ["a"])


def test_feed_forward_source_into_recurrent_target_reports_unmatched():
    source = make_policy(ActorCritic, SRC_OBS, SRC_CRITIC, seed=0)
    fill_normalizers(source)
    target = make_policy(ActorCriticRecurrent, SRC_OBS, SRC_CRITIC, seed=1, rnn_hidden_size=6)
    initial_memory = target.memory_a.rnn.weight_ih_l0.detach().clone()

    report = load_misaligned_state_dict(target, source.state_dict(), source.obs_layouts())

    assert not report.complete
    assert report.unmatched["memory_a.rnn.weight_ih_l0"] == "not in the checkpoint"
    assert report.unmatched["memory_c.rnn.weight_hh_l0"] == "not in the checkpoint"
    assert report.unmatched["actor.0.weight"].startswith("no segment in common")
    assert sorted(report.unused) == ["actor.0.weight", "critic.0.weight"]
    assert set(NORMALISER_BUFFERS) <= set(report.loaded)  # same observation layouts
    assert "unmatched memory_a.rnn.weight_ih_l0: not in the checkpoint" in report.summary()
    torch.testing.assert_close(target.memory_a.rnn.weight_ih_l0, initial_memory)
    torch.testing.assert_close(target.actor_obs_normalizer._mean, source.actor_obs_normalizer._mean)
    torch.testing.assert_close(target.actor[2].weight, source.actor[2].weight)  # same name and shape
    with torch.no_grad():
        assert target.act_inference(torch.randn(3, 9)).shape == (3, 2)

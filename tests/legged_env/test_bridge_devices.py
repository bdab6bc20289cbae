"""The torch bridge on a device that is not the default one, and a step free of host syncs.

Two JAX CPU devices stand in for a GPU (``--xla_force_host_platform_device_count=2``, set before JAX starts, so in
a subprocess): the env is built on the second, while torch hands it tensors that DLPack imports onto the first.
Every array the bridge gives the step must be on the env's device, or the jitted step sees two devices.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
import torch

from legged_rl.torch_vec_env import TorchVecEnv
from tests.legged_env.host_syncs import forbid_host_syncs

pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import jax, torch
    from legged_rl.torch_vec_env import TorchVecEnv
    from tests.legged_env import envs
    from tests.legged_env.host_syncs import forbid_host_syncs

    cpu0, cpu1 = jax.devices("cpu")
    with jax.default_device(cpu1):
        env = envs.build(envs.calm_config(4))
    bridge = TorchVecEnv(env)

    def devices():
        return {str(d) for leaf in jax.tree.leaves(bridge.state) for d in leaf.devices()}

    assert devices() == {str(cpu1)}, devices()
    bridge.episode_length_buf = torch.full((4,), bridge.max_episode_length - 2, dtype=torch.long)
    assert devices() == {str(cpu1)}, ("episode_length_buf", devices())
    ends = 0
    with forbid_host_syncs():
        for _ in range(3):
            obs, critic_obs, rewards, dones, infos = bridge.step(torch.zeros(4, bridge.num_actions))
            ends += dones.sum()
    assert devices() == {str(cpu1)}, ("step", devices())
    assert int(ends) == 4  # every env timed out inside the guarded steps
    bridge.set_env_state(bridge.get_env_state())
    assert devices() == {str(cpu1)}, ("set_env_state", devices())
    print("placement ok")
    """
)


def test_the_bridge_keeps_every_array_on_the_env_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=540
    )
    assert proc.returncode == 0 and "placement ok" in proc.stdout, proc.stderr[-3000:]


def test_climb_steps_and_episode_logs_need_no_host_sync(hard_env):
    bridge = TorchVecEnv(hard_env)
    bridge.episode_length_buf = torch.full((8,), bridge.max_episode_length - 1, dtype=torch.long)
    with forbid_host_syncs():
        _, _, _, dones, infos = bridge.step(torch.zeros(8, bridge.num_actions))
        later = bridge.step(torch.zeros(8, bridge.num_actions))[4]["episode"]
    assert bool(dones.all())
    episode = infos["episode"]
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in episode.values())
    # The first steps end every episode (time-outs, no goal): each level 0..7 reports a success rate of 0,
    # levels 8 and 9 had no episode (NaN); in the next step nothing ends: every per-episode log is NaN.
    rates = torch.stack([episode[f"success_level_{k:02d}"] for k in range(10)])
    torch.testing.assert_close(rates[:8], torch.zeros(8))
    assert torch.isnan(rates[8:]).all()
    assert all(torch.isnan(v) for k, v in later.items() if k != "curriculum_level")
    assert torch.isfinite(episode["rew_alive"]) and torch.isfinite(later["curriculum_level"])


@pytest.mark.parametrize("name", ["hard_env", "soft_env"])
def test_init_state_has_the_step_types_so_the_step_compiles_once(request, name):
    # A weakly typed leaf in init()'s state (e.g. a Python float through jnp.full) differs from the step's float32
    # output, so the batched step is traced and compiled a second time at the second step.
    env = request.getfixturevalue(name)
    state = env.init()
    stepped = env.step_batched(state, jnp.zeros((env.num_envs, env.num_actions), jnp.float32))

    def types(tree):
        return {jax.tree_util.keystr(p): (x.dtype, x.weak_type) for p, x in jax.tree_util.tree_leaves_with_path(tree)}

    before, after = types(state), types(stepped)
    assert {k: v for k, v in before.items() if after[k] != v} == {}

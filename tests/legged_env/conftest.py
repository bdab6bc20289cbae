"""Shared env instances: building one and compiling its step is the expensive part of these tests."""

import pytest
import torch

from tests.legged_env import envs


@pytest.fixture(autouse=True)
def _single_thread():
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def env_cache() -> dict:
    """Built envs by name, shared by every test of the session."""
    return {}


@pytest.fixture(scope="session")
def walk_env(env_cache):
    """The default walk task, 16 envs, seed 0 (DR, noise and pushes on): configs/walk.yaml's env, so the script
    tests' walk runs (16 envs) find its step in the persistent cache. Also test_every_task_builds_resets_and_steps'
    walk env."""
    return envs.default_env(env_cache, "walk")


@pytest.fixture(scope="session")
def calm_env(env_cache):
    """The walk task with every random perturbation off, 16 envs, seed 0."""
    if "calm" not in env_cache:
        env_cache["calm"] = envs.build(envs.calm_config())
    return env_cache["calm"]


@pytest.fixture(scope="session")
def walk_amp_env(env_cache):
    """The default walk_amp task, 16 envs, seed 0: test_walk_amp's env and test_every_task_builds_resets_and_steps'
    walk_amp env."""
    return envs.default_env(env_cache, "walk_amp")


@pytest.fixture(scope="session")
def hard_env(env_cache):
    """The climb task, 8 envs, physical boxes, every env at its own level, no random perturbations (see
    :func:`tests.legged_env.envs.climb_config`), seed 0: test_climb, test_resume, test_bridge_devices, and (through
    the persistent cache) the climb script tests' hard runs."""
    if "climb_hard" not in env_cache:
        env_cache["climb_hard"] = envs.build(envs.climb_config(8), task="climb")
    return env_cache["climb_hard"]


@pytest.fixture(scope="session")
def soft_env(env_cache):
    """The climb task, 4 envs, virtual boxes, levels that never move, the depth image 2 policy steps late
    (:data:`tests.legged_env.envs.SOFT_SETS` on :func:`tests.legged_env.envs.climb_config`), seed 0: test_climb,
    and (through the persistent cache) the climb script tests' soft run."""
    if "climb_soft" not in env_cache:
        env_cache["climb_soft"] = envs.build(envs.climb_config(4, *envs.SOFT_SETS), task="climb")
    return env_cache["climb_soft"]

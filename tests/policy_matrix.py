"""Every registered st_rl policy class, built by name, trained, rebuilt from its run directory and exported.

For each class in ``st_rl.modules.POLICY_CLASSES`` (except the mutexes, which are composed of trained runs
and never trained themselves) this trains the class with the algorithm it needs (PPO, or EstimatorPPO for
policies with a state estimator / privileged adaptor) on :class:`tests.st_rl.segments_env.SegmentsEnv`, an
env that has every kind of segment (image, height scan, privileged parameters, AMP observations); rebuilds the
policy from the run directory alone (``config.json`` + checkpoint); exports it with ``export_policy_as_jit``
(TorchScript) and ``export_policy_as_onnx`` (ONNX, run on onnxruntime) and reports each export's max abs
difference from eager ``act_inference`` over an observation sequence with resets.

    python -m tests.policy_matrix --iterations 30          # prints a JSON list, one row per class

``tests/st_rl/modules/test_policy_family.py`` runs the same for 2 iterations per class.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time

import torch

from st_rl.modules import load_policy_from_run
from st_rl.runners.on_policy_runner import OnPolicyRunner
from st_rl.utils.export import export_policy_as_jit
from st_rl.utils.onnx_export import export_policy_as_onnx
from st_rl.utils.onnx_policy import OnnxPolicy
from tests.st_rl.segments_env import SegmentsEnv

MUTEX_CLASSES = frozenset({"ActorCriticMutex", "ActorCriticFieldMutex", "ActorCriticClimbMutex"})

_SMALL = {"actor_hidden_dims": [32, 32], "critic_hidden_dims": [32, 32], "obs_normalization": True}
_RNN = {"rnn_hidden_size": 16}
_CONV_IMAGE = {"channels": [4], "kernel_sizes": [3], "strides": [1], "hidden_sizes": [16]}
_ENCODERS = {
    "encoder_component_names": ["target_image", "height_scan"],
    "encoder_class_name": ["Conv2dHeadModel", "MlpModel"],
    "encoder_kwargs": [_CONV_IMAGE, {"hidden_sizes": [8]}],
    "encoder_output_size": [8, 4],
    "critic_encoder_component_names": "shared",  # the critic's height_scan goes through the same encoder
}
_ESTIMATOR = {
    "estimator_target_components": ["base_lin_vel"],
    "estimator_obs_components": ["pos", "last_action", "friction"],
    "estimator_kwargs": {"hidden_sizes": [16]},
}
_ADAPTOR = {
    "adaptor_obs_components": ["pos", "base_lin_vel", "last_action"],
    "adaptor_target_components": ["friction"],
    "adaptor_kwargs": {"rnn_type": "gru", "rnn_hidden_size": 8, "hidden_sizes": [8]},
}
_VISUAL = {"visual_component_name": "target_image", "visual_kwargs": _CONV_IMAGE, "visual_latent_size": 8}
_AMP = {"amp_discriminator_kwargs": {"hidden_dims": [16]}}
_ESTIMATOR_PPO = {"class_name": "EstimatorPPO"}

# class_name -> (policy kwargs, algorithm section)
CONFIGS: dict[str, tuple[dict, dict]] = {
    "ActorCritic": ({}, {}),
    "ActorCriticRecurrent": (_RNN, {}),
    "EncoderActorCritic": (_ENCODERS, {}),
    "EncoderActorCriticRecurrent": ({**_ENCODERS, **_RNN}, {}),
    "EncoderAmpActorCriticRecurrent": ({**_ENCODERS, **_RNN, **_AMP}, {}),
    "StateAc": (_ESTIMATOR, _ESTIMATOR_PPO),
    "StateAcRecurrent": ({**_ESTIMATOR, **_RNN}, _ESTIMATOR_PPO),
    "PrivilegeStateAc": ({**_ADAPTOR, "adaptor_kwargs": {"rnn_type": None, "hidden_sizes": [8]}}, _ESTIMATOR_PPO),
    "PrivilegeStateAcRecurrent": ({**_ADAPTOR, **_RNN}, _ESTIMATOR_PPO),
    "AmpActorCritic": (_AMP, {}),
    "AmpActorCriticRecurrent": ({**_AMP, **_RNN}, {}),
    "VisualDeterministicAC": (_VISUAL, {}),
    "VisualDeterministicRecurrent": ({**_VISUAL, **_RNN}, {}),
    "EncoderStateAc": ({**_ENCODERS, **_ESTIMATOR}, _ESTIMATOR_PPO),
    "EncoderStateAcRecurrent": ({**_ENCODERS, **_ESTIMATOR, **_RNN}, _ESTIMATOR_PPO),
}


def train_cfg(class_name: str, seed: int = 0) -> dict:
    policy, algorithm = CONFIGS[class_name]
    return {
        "policy": {"class_name": class_name, **_SMALL, **copy.deepcopy(policy)},
        "algorithm": {"num_mini_batches": 2, "num_learning_epochs": 2, "learning_rate": 3e-4, **algorithm},
        "runner": {"num_steps_per_env": 16, "save_interval": 10_000, "print_progress": False, "seed": seed},
    }


def train_and_export(class_name: str, iterations: int, log_root: str, num_envs: int = 32, seed: int = 0) -> dict:
    """Train ``class_name`` for ``iterations``, rebuild it from the run directory, export it; one result row."""
    env = SegmentsEnv(num_envs, seed=seed)
    run_dir = os.path.join(log_root, class_name)
    runner = OnPolicyRunner(env, train_cfg(class_name, seed), log_dir=run_dir)
    initial = {k: v.detach().clone() for k, v in runner.alg.policy.state_dict().items()}
    start = time.perf_counter()
    runner.learn(iterations)
    seconds = time.perf_counter() - start
    changed = sorted(
        {k.split(".")[0] for k, v in runner.alg.policy.state_dict().items() if not torch.equal(v, initial[k])}
    )
    policy = load_policy_from_run(run_dir)  # config.json + the last checkpoint alone
    diff = export_policy_as_jit(policy, os.path.join(run_dir, "exported", "policy.pt"), env.num_obs)
    metadata = {"class_name": class_name, "obs_segments": {k: list(v) for k, v in env.obs_segments.items()}}
    onnx_path = os.path.join(run_dir, "exported", "policy.onnx")
    onnx_diff = export_policy_as_onnx(policy, onnx_path, env.num_obs, metadata=metadata)
    stats = runner.episode_statistics()
    return {
        "class_name": class_name,
        "algorithm": runner.cfg["algorithm"]["class_name"],
        "task": "SegmentsEnv",
        "iterations": iterations,
        "env_steps": iterations * num_envs * runner.runner_cfg.num_steps_per_env,
        "train_s": round(seconds, 2),
        "mean_episode_reward": stats["mean_reward"],
        "changed_modules": changed,
        "exported": True,
        "export_max_abs_diff": diff,
        "onnx_max_abs_diff": onnx_diff,
        "onnx_state": [spec["name"] for spec in OnnxPolicy(onnx_path).state_specs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--classes", nargs="*", default=list(CONFIGS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as log_root:
        for name in args.classes:
            rows.append(train_and_export(name, args.iterations, log_root))
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()

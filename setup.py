from setuptools import find_packages, setup

COMMANDS = (
    "train",
    "play",
    "export",
    "sim2sim",
    "benchmark",
    "record_motion",
    "compare_motion",
    "make_reference_motion",
    "solver_check",
)
EXTRAS = {
    # rsl-rl-lib's own OnPolicyRunner on our envs (legged_rl.adapters.RslRlVecEnv)
    "rsl_rl": ["rsl-rl-lib>=5.5"],
    # TorchRL EnvBase adapter (legged_rl.adapters.TorchRLEnv)
    "torchrl": ["torchrl>=0.14"],
    # --logger wandb
    "wandb": ["wandb"],
}

setup(
    name="st_rl",
    version="0.1.0",
    description="st_rl (PPO learner, PyTorch) + legged_env (quadruped environments, JAX + MuJoCo-MJX) + legged_rl "
    "(the application: torch bridge, train/play/export/sim2sim/benchmark commands)",
    python_requires=">=3.10",
    packages=find_packages(include=["st_rl", "st_rl.*", "legged_env", "legged_env.*", "legged_rl", "legged_rl.*"]),
    package_data={
        "legged_env": ["robots/*/*.xml", "robots/*/motions/*.npz"],
        "legged_rl": ["configs/*.yaml"],
    },
    install_requires=[
        # Pinned: 2.13.0 is the CPU build available locally; see the README for a CUDA install.
        "torch==2.13.0",
        "jax>=0.4.30",
        "mujoco>=3.2",
        "mujoco-mjx>=3.2",
        "numpy",
        "pyyaml",
        "tensorboard",
        "tensordict",
        "imageio",
        "imageio-ffmpeg",
        "onnx",
        "onnxscript",
        "onnxruntime",
    ],
    extras_require={
        **EXTRAS,
        # what CI installs: the test tools and every optional extra, so every adapter is tested on every run
        "dev": ["pytest", "pytest-timeout", "ruff"] + sorted({p for pkgs in EXTRAS.values() for p in pkgs}),
    },
    entry_points={
        "console_scripts": [f"legged-rl-{name.replace('_', '-')}=legged_rl.commands.{name}:run" for name in COMMANDS]
    },
)

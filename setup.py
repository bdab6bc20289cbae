from setuptools import find_packages, setup

setup(
    name="st_rl",
    version="0.1.0",
    description="st_rl (PPO learner, PyTorch) + legged_env (quadruped environments, JAX + MuJoCo-MJX)",
    python_requires=">=3.10",
    packages=find_packages(include=["st_rl", "st_rl.*", "legged_env", "legged_env.*"]),
    package_data={"legged_env": ["robots/*/*.xml", "robots/*/motions/*.npz"]},
    install_requires=[
        # Pinned: 2.13.0 is the CPU build available locally; see the README for a CUDA install.
        "torch==2.13.0",
        "jax>=0.4.30",
        "mujoco>=3.2",
        "mujoco-mjx>=3.2",
        "numpy",
        "pyyaml",
        "tensorboard",
        "imageio",
        "imageio-ffmpeg",
    ],
    extras_require={"dev": ["pytest", "pytest-timeout", "ruff"]},
)

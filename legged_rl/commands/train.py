"""Train a policy: python scripts/train.py --task=walk [--num_envs N] [--max_iterations N] [--resume ...].

Distillation (TPPO): ``--config <student recipe> --teacher <teacher run dir>`` (= ``--set algorithm.teacher_run=``).

``--init_from <run_dir>`` starts a new run from another run's weights even when its observation segments
differ (e.g. climb from walk, or hard obstacles from a soft-obstacle run): tensors are matched by segment
name (st_rl.modules.misaligned) and what was remapped or left at its initial value is printed.

Several processes (one per CPU core or GPU): ``--nproc N|auto``, or ``torchrun --nproc_per_node N scripts/train.py``.
Without ``--nproc`` on CPU it runs one pinned process per core when each gets at least 256 envs (the default 1024
envs: 2 x 512 on 2 cores), else one process; the first line printed says which (``cli.training_layout``).

``--logger wandb`` (``runner.logger``; needs the ``wandb`` extra) also sends every TensorBoard scalar, with the same
key and step, to a Weights & Biases run named after the run directory, in project ``runner.wandb_project`` (default:
the experiment name), with its files in ``<run_dir>/wandb/``; ``WANDB_MODE`` picks online/offline, and without an
API key it runs offline (``wandb sync`` uploads it later).
"""

import os
import sys

from legged_rl.launch import prepare_worker_environment
from st_rl.utils import distributed

prepare_worker_environment()  # under torchrun: XLA flags before legged_env imports jax

from legged_rl import cli  # noqa: E402
from st_rl.runners.config import check_mini_batches  # noqa: E402
from st_rl.runners.logger import import_wandb  # noqa: E402
from st_rl.utils.config import ConfigError  # noqa: E402


def main(args) -> int:
    spec, cfg, source = cli.load_config(args)
    if cfg["runner"]["logger"] == "wandb":
        import_wandb()  # missing: one line naming the extra, before the env is built
    if cli.is_frozen_policy(cfg["policy"]):
        raise ConfigError(
            f"policy.class_name {cfg['policy']['class_name']} in {source} is not trained (it runs sub-policies from "
            "other runs): use scripts/play.py or scripts/export.py with this config"
        )
    if not distributed.launched_by_torchrun():
        nproc, layout = cli.training_layout(args.nproc, args.device, cfg["env"]["num_envs"])
        check_before_building(args, cfg, source, nproc)  # one error line here, not one per launched rank
        print(layout, flush=True)
        if nproc > 1 or args.nproc is not None:
            return distributed.launch(nproc, distributed.strip_flag(sys.argv, "--nproc"))
    dist = distributed.init_distributed(args.device)
    try:
        return train(args, spec, cfg, source, dist)
    finally:
        distributed.shutdown()


def check_before_building(args, cfg: dict, source: str, world_size: int) -> str | None:
    """What fails before any env is built (and, with several processes, before they are launched): the resume
    checkpoint (its path is returned), the --init_from run, the motion files, the mini-batch split."""
    runner_cfg = cfg["runner"]
    resume_path = None
    if runner_cfg["resume"]:  # --resume, or runner.resume in the config
        experiment = runner_cfg["experiment_name"]
        resume_path = cli.checkpoint_path(args.log_root, experiment, runner_cfg["load_run"], runner_cfg["checkpoint"])
        if args.init_from:
            raise ConfigError("--init_from starts a new run from another run's weights; it cannot go with --resume")
    if args.init_from:
        cli.init_from_checkpoint(args.init_from, args.checkpoint)  # a missing run fails before the env is built
    cli.resolve_motion_files(cfg["algorithm"].get("motion_files") or [], source)  # fail before building the env
    cli.check_teacher(cfg)  # TPPO: the teacher run, before building the env
    env_cfg = cli.per_rank_env_cfg(cfg["env"], world_size)
    check_mini_batches(cfg, env_cfg["num_envs"], source)  # else the first update fails, after the env is built
    return resume_path


def train(args, spec, cfg: dict, source: str, dist: distributed.DistributedContext | None) -> int:
    runner_cfg = cfg["runner"]
    experiment = runner_cfg["experiment_name"]
    rank, world_size = (dist.rank, dist.world_size) if dist is not None else (0, 1)
    resume_path = check_before_building(args, cfg, source, world_size)
    env_cfg = cli.per_rank_env_cfg(cfg["env"], world_size)
    device = str(dist.device) if dist is not None else args.device
    # Only the path: the directory is created by runner.learn(), after everything below has been built, so a
    # config a constructor rejects leaves no empty run behind.
    log_dir = cli.new_run_dir(args.log_root, experiment, runner_cfg["run_name"])

    env = cli.make_env(spec, env_cfg, runner_cfg["seed"] + rank, device, source)
    runner = cli.build_runner(env, cfg, log_dir, device, source, dist=dist)
    cli.attach_reference_motion(runner, env, cfg, source)  # APPO: reference clips checked before training
    is_main = rank == 0
    if resume_path is not None:
        runner.load(resume_path)  # every rank; learn() then broadcasts rank 0's weights
        if is_main:
            print(f"resumed from {resume_path} at iteration {runner.current_learning_iteration}")
    if args.init_from:
        report = runner.alg.policy.load_misaligned_from_run(args.init_from, args.checkpoint)
        if is_main:
            print(f"initialised from {cli.init_from_checkpoint(args.init_from, args.checkpoint)}\n{report.summary()}")
    envs = f"{cfg['env']['num_envs']} envs" + (f" ({world_size} x {env.num_envs})" if world_size > 1 else "")
    if is_main:
        print(
            f"task {spec.name} | {envs} | obs {env.num_obs} | critic obs {env.num_privileged_obs} | "
            f"actions {env.num_actions} | logs {os.path.abspath(log_dir)}"
        )
    try:
        runner.learn(runner_cfg["max_iterations"], runner_cfg["init_at_random_ep_len"])
    finally:
        runner.close()  # finishes the W&B run (--logger wandb)
    if is_main:
        print(f"\ndone: {runner.current_learning_iteration} iterations, checkpoints in {log_dir}")
    return 0


def run() -> None:
    """Console-script entry point: parse the command line and run."""
    parser = cli.base_parser(__doc__)
    parser.add_argument("--max_iterations", type=cli.int_at_least(0), default=None, help="learning iterations to run")
    parser.add_argument("--run_name", default=None, help="suffix of the run directory name")
    parser.add_argument(
        "--logger",
        choices=("tensorboard", "wandb"),
        default=None,
        help="runner.logger: tensorboard (default), or wandb: the same scalars also to Weights & Biases "
        "(offline without an API key; WANDB_MODE=online|offline)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from --load_run/--checkpoint")
    parser.add_argument(
        "--init_from",
        default=None,
        metavar="RUN_DIR",
        help="start from the weights of another run directory (its --checkpoint, default the latest), matching "
        "observation segments by name (e.g. a walk run for climb)",
    )
    parser.add_argument(
        "--teacher",
        default=None,
        metavar="RUN_DIR",
        help="the teacher's run directory for distillation (algorithm.class_name TPPO); the same as "
        "--set algorithm.teacher_run=RUN_DIR",
    )
    parser.add_argument(
        "--nproc",
        default=None,
        metavar="N|auto",
        help="train with N processes on this machine (auto: one per CPU core, or per GPU with --device cuda), "
        "launched through torchrun; --num_envs is the total, split evenly. Default on CPU: one pinned process per "
        "core when each gets >= 256 envs, else one process",
    )
    cli.run_main(main, parser)


if __name__ == "__main__":
    run()

"""Train a policy: python scripts/train.py --task=walk [--num_envs N] [--max_iterations N] [--resume ...]."""

import os

from legged_env import cli


def main(args) -> int:
    spec, cfg, source = cli.load_config(args)
    runner_cfg = cfg["runner"]
    experiment = runner_cfg["experiment_name"]
    resume_path = None
    if runner_cfg["resume"]:  # --resume, or runner.resume in the config
        resume_path = cli.checkpoint_path(args.log_root, experiment, runner_cfg["load_run"], runner_cfg["checkpoint"])
    log_dir = cli.new_run_dir(args.log_root, experiment, runner_cfg["run_name"])

    from st_rl.runners import OnPolicyRunner  # heavy imports after the argument checks

    env = cli.make_env(spec, cfg["env"], runner_cfg["seed"], args.device, source)
    runner = OnPolicyRunner(env, {k: cfg[k] for k in cli.TRAIN_SECTIONS}, log_dir, args.device, source)
    if resume_path is not None:
        runner.load(resume_path)
        print(f"resumed from {resume_path} at iteration {runner.current_learning_iteration}")
    print(
        f"task {spec.name} | {env.num_envs} envs | obs {env.num_obs} | critic obs {env.num_privileged_obs} | "
        f"actions {env.num_actions} | logs {os.path.abspath(log_dir)}"
    )
    runner.learn(runner_cfg["max_iterations"], runner_cfg["init_at_random_ep_len"])
    print(f"\ndone: {runner.current_learning_iteration} iterations, checkpoints in {log_dir}")
    return 0


if __name__ == "__main__":
    parser = cli.base_parser(__doc__)
    parser.add_argument("--max_iterations", type=int, default=None, help="learning iterations to run")
    parser.add_argument("--run_name", default=None, help="suffix of the run directory name")
    parser.add_argument("--resume", action="store_true", help="continue from --load_run/--checkpoint")
    cli.run_main(main, parser)

"""Evaluate a trained policy deterministically: python scripts/play.py --task=walk --load_run -1 [--video].

Runs one episode per env (``--num_episodes`` envs) with the policy mean, on the run's own env config
(``config.json``) without observation noise and pushes (``--perturbed`` keeps them), plus any
``--set env.*`` overrides; prints and writes ``play_metrics.json`` in the run.
"""

import json
import os

from legged_env import cli

# legged_gym's play convention: measure the policy without observation noise or pushes (physical
# parameters stay randomised as in training). --perturbed keeps the training conditions.
NOMINAL_CONDITIONS = ["env.noise.enabled=false", "env.domain_rand.push_vel_xy=0.0"]


def main(args) -> int:
    spec, cfg, source = cli.load_config(args)
    path = cli.find_checkpoint(args, cfg["runner"]["experiment_name"])
    run_dir = os.path.dirname(path)
    run_cfg = cli.read_run_config(run_dir)
    conditions = [] if args.perturbed else NOMINAL_CONDITIONS
    env_overrides = [f"env.num_envs={args.num_episodes}", *conditions] + [
        o for o in args.overrides if o.startswith("env.")
    ]
    env_cfg = cli.resolve_env_overrides(spec, run_cfg["env"], env_overrides)
    seed = args.seed if args.seed is not None else 0

    import torch

    from legged_env.evaluation import evaluate, render_video
    from st_rl.utils.checkpoint import load_policy_from_run

    env = cli.make_env(spec, env_cfg, seed, args.device, source)
    policy = load_policy_from_run(run_dir, cli.checkpoint_iteration(path), args.device)
    cli.check_policy_fits(policy, env, path)

    def act(obs):
        with torch.inference_mode():  # also keeps a recurrent policy's state out of any autograd graph
            return policy.act_inference(obs)

    metrics, frames = evaluate(env, act, env.env.total_mass, record_env=0 if args.video else None)
    metrics.update(checkpoint=os.path.abspath(path), seed=seed, env_overrides=env_overrides[1:])
    out = os.path.join(run_dir, "play_metrics.json")
    with open(out, "w") as f:
        json.dump(metrics, f, indent=2)
    print(json.dumps(metrics, indent=2))
    if args.video:
        video = os.path.join(run_dir, "videos", f"play_{os.path.basename(path)[:-3]}.mp4")
        os.makedirs(os.path.dirname(video), exist_ok=True)
        render_video(env.env.mj_model, frames, video, fps=1.0 / env.env.dt)
        print(f"video: {video}")
    print(f"metrics: {out}")
    return 0


if __name__ == "__main__":
    parser = cli.base_parser(__doc__)
    parser.add_argument("--num_episodes", type=int, default=100, help="episodes to evaluate (one per env)")
    parser.add_argument("--video", action="store_true", help="write an mp4 of env 0 (set MUJOCO_GL=egl headless)")
    parser.add_argument(
        "--perturbed", action="store_true", help="keep training's observation noise and pushes (default: both off)"
    )
    cli.run_main(main, parser)

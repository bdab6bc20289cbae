"""Evaluate a trained policy deterministically: python scripts/play.py --task=walk --load_run -1 [--video].

Runs one episode per env (``--num_episodes`` envs) with the policy mean, on the run's own env config
(``config.json``) without observation noise and pushes (``--perturbed`` keeps them), plus any
``--set env.*`` overrides; prints and writes ``play_metrics.json`` in the run.

``--video`` writes ``videos/play_model_<it>.mp4`` in the run and adds the same video (smaller: an animated GIF
at half size, at most 25 frames per second) to the run's TensorBoard as image ``Play/video`` at step ``<it>``, in
an event file of its own (``events.out.tfevents.*.play``).

A policy built from other runs (the mutex family, e.g. ``--task=climb --config configs/climb_mutex.yaml``)
is not trained: it is built from the config file, runs on that config's env, and its metrics (and
video) go to a new directory ``<log_root>/<experiment>/<date>_mutex`` with its ``config.json``.
"""

import json
import os

from legged_rl import cli

# legged_gym's play convention: measure the policy without observation noise or pushes (physical
# parameters stay randomised as in training). --perturbed keeps the training conditions.
NOMINAL_CONDITIONS = ["env.noise.enabled=false", "env.domain_rand.push_vel_xy=0.0"]
VIDEO_TAG = "Play/video"  # --video in the run's TensorBoard (images), step: the checkpoint's iteration


def main(args) -> int:
    spec, cfg, source = cli.load_config(args)
    frozen = cli.is_frozen_policy(cfg["policy"])
    conditions = [] if args.perturbed else NOMINAL_CONDITIONS
    env_overrides = [f"env.num_envs={args.num_episodes}", *conditions, *spec.play_overrides] + [
        o for o in args.overrides if o.startswith("env.")
    ]
    if frozen:  # built from the config: its env section is the env
        path = None
        run_dir = cli.new_run_dir(args.log_root, cfg["runner"]["experiment_name"], "mutex")
        env_cfg = cli.resolve_env_overrides(spec, cfg["env"], env_overrides)
    else:
        path = cli.find_checkpoint(args, cfg["runner"]["experiment_name"])
        run_dir = os.path.dirname(path)
        env_cfg = cli.resolve_env_overrides(spec, cli.read_run_config(run_dir)["env"], env_overrides)
    seed = args.seed if args.seed is not None else 0

    import torch

    from legged_rl.evaluation import TensorBoardClip, evaluate, render_video
    from legged_rl.torch_vec_env import TorchVecEnv
    from st_rl.modules import load_policy_from_run
    from st_rl.utils.io import atomic_write_json

    task = cli.build_task(spec, env_cfg, seed, source)  # compiled below, in TorchVecEnv
    if frozen:  # sub-policies load before the env compiles, so a bad path fails fast
        policy, policy_cfg = cli.build_frozen_policy(cfg, task, source, args.device)
    else:
        policy = load_policy_from_run(run_dir, cli.checkpoint_iteration(path), args.device)
    env = TorchVecEnv(task, device=args.device)
    cli.check_policy_fits(policy, env, path or source)
    if frozen:  # the new run directory is written only once everything is built and fits
        os.makedirs(run_dir, exist_ok=True)
        atomic_write_json(os.path.join(run_dir, "config.json"), {**cfg, "env": env_cfg, "policy": policy_cfg})
    selections = []

    def act(obs):
        with torch.inference_mode():  # also keeps a recurrent policy's state out of any autograd graph
            actions = policy.act_inference(obs)
        if frozen:
            selections.append(policy.last_selection.clone())
        return actions

    metrics, frames, render_model = evaluate(env, act, env.env.total_mass, record_env=0 if args.video else None)
    if frozen:
        chosen = torch.stack(selections)
        chosen = chosen[chosen >= 0]
        counts = torch.bincount(chosen, minlength=len(policy.sub_policies)).float()
        metrics["sub_policy_step_fraction"] = [float(c) for c in counts / counts.sum().clamp_min(1.0)]
    name = os.path.basename(path)[:-3] if path else "mutex"
    metrics.update(checkpoint=os.path.abspath(path) if path else None, seed=seed, env_overrides=env_overrides[1:])
    out = os.path.join(run_dir, "play_metrics.json")
    with open(out, "w") as f:
        json.dump(metrics, f, indent=2)
    print(json.dumps(metrics, indent=2))
    if args.video:
        video = os.path.join(run_dir, "videos", f"play_{name}.mp4")
        os.makedirs(os.path.dirname(video), exist_ok=True)
        fps = 1.0 / float(env.env.dt)
        clip = TensorBoardClip(fps)
        render_video(render_model, frames, video, fps=fps, on_frame=clip.add)
        print(f"video: {video}")
        step = cli.checkpoint_iteration(path) if path else 0
        if clip.frames:
            clip.write(run_dir, VIDEO_TAG, step)
            print(f"tensorboard: {VIDEO_TAG} at step {step} in {run_dir}")
    print(f"metrics: {out}")
    return 0


def run() -> None:
    """Console-script entry point: parse the command line and run."""
    parser = cli.base_parser(__doc__)
    parser.add_argument(
        "--num_episodes", type=cli.int_at_least(1), default=100, help="episodes to evaluate (one per env)"
    )
    parser.add_argument(
        "--video",
        action="store_true",
        help="write an mp4 of env 0, also in the run's TensorBoard as Play/video (set MUJOCO_GL=egl headless)",
    )
    parser.add_argument(
        "--perturbed", action="store_true", help="keep training's observation noise and pushes (default: both off)"
    )
    cli.run_main(main, parser)


if __name__ == "__main__":
    run()

"""Record a trained policy's motion as an AMP reference clip: python scripts/record_motion.py --task=walk --load_run -1.

Works for any walk-like run (an AMP observation group is added when the run had none). Rolls the policy out
deterministically (its mean action, seed 0 unless --seed) on the run's own env config with
a fixed forward command (``--command`` m/s, no lateral or yaw command), without observation noise and pushes,
and writes env 0's AMP observations (``infos["amp_obs"]``, the state after each control step; the final state
before a reset where the episode ends) from the first step until its episode ends or ``--seconds`` pass, as
one clip (format: st_rl/datasets/motion_loader.py) at the control rate. An episode shorter than 1 s is an error.
"""

import os
import sys

from legged_rl import cli
from st_rl.utils.config import ConfigError

NOMINAL_CONDITIONS = ["env.noise.enabled=false", "env.domain_rand.push_vel_xy=0.0"]
MIN_SECONDS = 1.0


def command_overrides(command: float) -> list[str]:
    """``--set`` items fixing the velocity command to ``(command, 0, 0)``."""
    return [
        f"env.commands.lin_vel_x=[{command},{command}]",
        "env.commands.lin_vel_y=[0.0,0.0]",
        "env.commands.ang_vel_yaw=[0.0,0.0]",
    ]


def main(args) -> int:
    spec, cfg, source = cli.load_config(args)
    path = cli.find_checkpoint(args, cfg["runner"]["experiment_name"])
    run_dir = os.path.dirname(path)
    run_cfg = cli.read_run_config(run_dir)
    num_envs = args.num_envs if args.num_envs is not None else 1
    env_overrides = [
        f"env.num_envs={num_envs}",
        *NOMINAL_CONDITIONS,
        *command_overrides(args.command),
        *(o for o in args.overrides if o.startswith("env.")),
    ]
    env_cfg = cli.resolve_env_overrides(spec, run_cfg["env"], env_overrides)
    if not env_cfg["observations"].get("amp"):
        # A run trained without an AMP group (e.g. plain walk): add it; it changes no policy input.
        from legged_env.robots.go1.amp import AMP_OBS_SEGMENTS

        env_cfg["observations"]["amp"] = {name: {"scale": 1.0} for name in AMP_OBS_SEGMENTS}
    zero_below = env_cfg.get("commands", {}).get("zero_below", 0.0)
    if 0.0 < abs(args.command) < zero_below:
        raise ConfigError(
            f"--command {args.command} is below env.commands.zero_below {zero_below}: the env would command zero"
        )
    seed = args.seed if args.seed is not None else 0

    import torch

    from legged_env.robots import get_robot
    from st_rl.datasets.motion_loader import frames_until_done, save_motion
    from st_rl.modules import load_policy_from_run

    env = cli.make_env(spec, env_cfg, seed, args.device, source)
    segments = getattr(env, "amp_obs_segments", None)
    if segments is None:
        raise ConfigError(f"task '{args.task}' provides no AMP observation (its env has no amp_obs_segments)")
    joint_names = get_robot(env_cfg["robot"]).JOINT_NAMES
    policy = load_policy_from_run(run_dir, cli.checkpoint_iteration(path), args.device)
    cli.check_policy_fits(policy, env, path)

    dt = float(env.env.dt)
    steps = max(1, int(round(args.seconds / dt)))
    amp_obs, final_amp_obs, dones = [], [], []
    time_out = False
    obs, _ = env.reset()
    for _ in range(steps):
        with torch.inference_mode():
            obs, _, _, done, infos = env.step(policy.act_inference(obs))
        # Only env 0 is kept; copies, since the env's tensors are views of its (JAX) buffers.
        amp_obs.append(infos["amp_obs"][:1].cpu().clone())
        final_amp_obs.append(infos["final_amp_obs"][:1].cpu().clone())
        dones.append(done[:1].cpu().clone())
        if bool(done[0]):
            time_out = bool(infos["time_outs"][0])
            break
    frames = frames_until_done(amp_obs, dones, final_amp_obs, env_index=0)
    ended = bool(dones[-1][0])
    duration = (len(frames) - 1) * dt
    if ended:
        how = "by its time limit" if time_out else "by a termination (fall)"
    else:
        how = f"after --seconds {args.seconds}"
    if duration < MIN_SECONDS:
        print(
            f"error: env 0's clip lasts only {duration:.2f} s (ended {how}), less than {MIN_SECONDS:g} s: no clip "
            f"written (check the policy with scripts/play.py, or record longer)",
            file=sys.stderr,
        )
        return 1
    output = args.output or os.path.join(run_dir, "motions", "recorded.npz")
    description = (
        f"recorded from {os.path.abspath(path)}: task {args.task}, forward command {args.command} m/s, seed {seed}, "
        f"{len(frames)} frames ({duration:.2f} s), ended {how}"
    )
    try:
        save_motion(output, frames, 1.0 / dt, joint_names, segments, weight=args.weight, description=description)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{output}: {len(frames)} frames at {1.0 / dt:g} fps ({duration:.2f} s), ended {how}")
    return 0


def run() -> None:
    """Console-script entry point: parse the command line and run."""
    parser = cli.base_parser(__doc__)
    parser.add_argument(
        "--seconds", type=cli.positive_float, default=10.0, help="longest clip to record (s, default 10)"
    )
    parser.add_argument("--command", type=float, default=0.6, help="forward velocity command (m/s, default 0.6)")
    parser.add_argument("--weight", type=cli.positive_float, default=1.0, help="sampling weight stored in the clip")
    parser.add_argument("--output", default=None, help="clip path (default: <run>/motions/recorded.npz)")
    cli.run_main(main, parser)


if __name__ == "__main__":
    run()

"""Throughput benchmark, printed as one JSON object: python scripts/benchmark.py --task=walk.

Reports env-steps/s through the torch VecEnv with random actions at each ``--sizes`` num_envs, the
jit compile seconds of the batched step (cold: a fresh, empty compilation cache), and one PPO
iteration's collection and learning seconds at ``--ppo_envs`` envs. With ``--nproc 1,2`` it also
measures training with 1 and 2 processes at the same total ``--ppo_envs`` (env-steps/s, collection and
learning seconds per iteration), the multi-process ones launched through torchrun, under ``"nproc"``, and
``"default_nproc"``: what ``train.py`` runs without ``--nproc`` at ``--ppo_envs`` envs. ``--vs_rsl_rl`` times the
learner alone against rsl-rl-lib's PPO instead (:mod:`legged_rl.learner_benchmark`).
Not a test: numbers depend on the machine; compare ratios measured in the same run.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

from legged_rl.launch import prepare_worker_environment
from st_rl.utils import distributed

prepare_worker_environment()  # under torchrun: XLA flags before legged_env imports jax

from legged_rl import cli  # noqa: E402
from st_rl.runners.config import check_mini_batches  # noqa: E402


def main(args) -> int:
    if distributed.launched_by_torchrun():
        return rank_main(args)
    sizes = args.sizes
    spec, cfg, source = cli.load_config(args)
    if args.vs_rsl_rl:
        return vs_rsl_rl(spec, cfg, source, sizes)
    if args.time_to_walk:
        return time_to_walk(args, spec, cfg)
    nprocs = [distributed.resolve_nproc(n, args.device) for n in args.nproc.split(",")] if args.nproc else []
    for n in nprocs:
        cli.per_rank_env_cfg({**cfg["env"], "num_envs": args.ppo_envs}, n)
    # The PPO timing's mini-batches, checked before any env is built.
    check_mini_batches(cfg, args.ppo_envs, source, "--ppo_envs")
    # A fresh cache directory makes the first compile a cold one, and leaves the user's cache alone. Made after
    # the checks above (a bad argument leaves no directory behind), before the first env reads it.
    os.environ["LEGGED_ENV_JAX_CACHE"] = tempfile.mkdtemp(prefix="legged_env_bench_cache_")

    import jax
    import torch

    from legged_rl.benchmark import time_env_steps, time_first_step, time_ppo_iterations

    def env_with(n: int):
        return cli.make_env(spec, {**cfg["env"], "num_envs": n}, 0, args.device, source)

    result = {
        "task": spec.name,
        "device": args.device,
        "jax_backend": jax.default_backend(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    env, result["jit_compile_s"] = time_first_step(lambda: env_with(sizes[0]))
    result["jit_compile_num_envs"] = sizes[0]
    rates = {}
    for n in sizes:
        env = env if env.num_envs == n else env_with(n)
        rates[str(n)] = round(time_env_steps(env, args.steps, args.repeats))
    result["env_steps_per_s"] = rates
    env = env_with(args.ppo_envs)
    # No log_dir and no learn(): nothing is written.
    runner = cli.build_runner(env, cfg, None, args.device, source)
    cli.attach_reference_motion(runner, env, cfg, source)
    ppo = time_ppo_iterations(runner, args.ppo_iterations)
    result["ppo_iteration"] = {"num_envs": args.ppo_envs, **{k: round(v, 3) for k, v in ppo.items()}}
    if hasattr(env.env, "render_depth"):  # a task with a forward depth camera (climb)
        result["forward_depth"] = depth_cost(spec, cfg, env, sizes[0], args, source)
    if nprocs:
        one = {"env_steps_per_s": round(time_env_steps(env, args.steps, args.repeats)), **ppo}
        del env, runner
        result["nproc"] = {str(n): nproc_result(n, one, args) for n in nprocs}
        result["default_nproc"] = cli.training_layout(None, args.device, args.ppo_envs)[0]
    print(json.dumps(result, indent=2))
    return 0


def time_to_walk(args, spec, cfg: dict) -> int:
    """``--time_to_walk``: the default training command, then its checkpoints against play's walking criteria
    (:mod:`legged_rl.time_to_walk`); prints one JSON object and writes it to ``<run>/time_to_walk.json``."""
    import re

    import torch

    from legged_rl import time_to_walk as ttw
    from legged_rl.benchmark import time_env_steps
    from legged_rl.evaluation import evaluate
    from legged_rl.torch_vec_env import TorchVecEnv
    from st_rl.modules import load_policy_from_run
    from st_rl.utils.io import atomic_write_json

    if spec.name not in ("walk", "walk_amp"):
        raise cli.ConfigError(f"--time_to_walk measures a velocity-command task (walk, walk_amp), not {spec.name}")
    seed = args.seed if args.seed is not None else cfg["runner"]["seed"]
    extra = [x for o in args.overrides for x in ("--set", o)]
    if args.config:
        extra += ["--config", args.config]
    if args.num_envs is not None:
        extra += ["--num_envs", str(args.num_envs)]
    if args.max_iterations is not None:
        extra += ["--max_iterations", str(args.max_iterations)]
    if args.train_nproc is not None:
        extra += ["--nproc", args.train_nproc]
    if args.eval_run:  # a run trained earlier: its clock starts when it wrote config.json (start-up before: lost)
        cmd, run_dir = None, args.eval_run
        start = os.path.getmtime(os.path.join(run_dir, "config.json")) if os.path.isdir(run_dir) else 0.0
        if not ttw.checkpoints(run_dir):
            raise cli.CheckpointError(f"--eval_run {run_dir}: no model_<iteration>.pt checkpoints there")
    else:
        cmd = ttw.train_command(spec.name, seed, args.log_root, args.eval_every, extra)
        start, stdout, _ = ttw.run_training(cmd, args.train_timeout_s, ttw.checkout_options(args.train_checkout))
        match = re.search(r"\| logs (\S+)", stdout)
        if match is None:
            raise RuntimeError(f"no run directory in the training output: {stdout[-500:]}")
        run_dir = match.group(1)
    saved = ttw.checkpoints(run_dir)
    train_wall_s = max(os.path.getmtime(p) for _, p in saved) - start
    run_cfg = cli.read_run_config(run_dir)
    # over today's defaults: a run's config.json from before a key existed lacks it
    run_env = cli.resolve_env_overrides(spec, run_cfg["env"], [])
    steps_per_iteration = run_cfg["runner"]["num_steps_per_env"] * run_cfg["env"]["num_envs"]
    ckpts = [c for c in saved if c[0] > 0]

    envs, policies = {}, {}
    criteria = {**ttw.FORWARD, **ttw.JOYSTICK}

    def evaluate_checkpoint(it: int, name: str) -> dict:
        if name not in envs:
            commands, _ = criteria[name]
            overrides = [f"env.num_envs={args.eval_episodes}", *ttw.NOMINAL, *(commands or [])]
            env_cfg = cli.resolve_env_overrides(spec, run_env, overrides)
            envs[name] = TorchVecEnv(cli.build_task(spec, env_cfg, 0), device=args.device)
        if it not in policies:
            policies.clear()
            policies[it] = load_policy_from_run(run_dir, it, args.device)
        policy = policies[it]

        def act(obs):
            with torch.inference_mode():
                return policy.act_inference(obs)

        metrics, _, _ = evaluate(envs[name], act, envs[name].env.total_mass)
        return metrics

    forward_index, forward_log = ttw.first_meeting(evaluate_checkpoint, ckpts, ttw.FORWARD)
    joystick_index, joystick_log = ttw.first_meeting(
        evaluate_checkpoint, ckpts, ttw.JOYSTICK, start_index=forward_index if forward_index is not None else 0
    )
    referee = None
    if args.referee:  # the first checkpoint meeting the joystick criteria (else forward's), exported, in MuJoCo
        index = joystick_index if joystick_index is not None else forward_index
        referee = {"iteration": None} if index is None else referee_check(args, spec, run_dir, ckpts[index][0])
    env = cli.make_env(spec, run_env, 0, args.device, "the run's config.json")
    rate = time_env_steps(env, args.steps, args.repeats)
    result = {
        "task": spec.name,
        "seed": seed,
        "train_command": " ".join(cmd[3:]) if cmd else None,
        "clock_start": "config.json written (--eval_run)" if args.eval_run else "training launched",
        "train_checkout": os.path.abspath(args.train_checkout) if args.train_checkout else None,
        "run_dir": run_dir,
        "train_wall_s": round(train_wall_s, 1),
        "iterations_trained": ckpts[-1][0] if ckpts else 0,
        "env_steps_per_iteration": steps_per_iteration,
        "forward": ttw.figures(forward_index, ckpts, start, steps_per_iteration),
        "joystick": ttw.figures(joystick_index, ckpts, start, steps_per_iteration),
        "random_action_env_steps_per_s": round(rate),
        "random_action_num_envs": env.num_envs,
        "evaluations": forward_log + joystick_log,
        "referee": referee,
        "criteria": {name: thresholds for name, (_, thresholds) in criteria.items()},
    }
    result["time_to_walk_s"] = result["forward"]["time_to_walk_s"]
    result["env_steps_to_walk"] = result["forward"]["env_steps_to_walk"]
    atomic_write_json(os.path.join(run_dir, "time_to_walk.json"), result)
    print(json.dumps(result, indent=2))
    return 0


def referee_check(args, spec, run_dir: str, iteration: int) -> dict:
    """``--referee``: checkpoint ``iteration`` exported (scripts/export.py, into ``<run>/exported``) and run in plain
    MuJoCo with the referee physics on :data:`legged_rl.time_to_walk.REFEREE_COMMANDS`."""
    from legged_rl import time_to_walk as ttw
    from legged_rl.sim2sim import MujocoDeployment, run_command

    log_root, experiment = os.path.split(os.path.dirname(os.path.abspath(run_dir)))
    export = [sys.executable, "-m", "legged_rl.commands.export", f"--task={spec.name}", "--log_root", log_root,
              "--load_run", os.path.basename(run_dir), "--checkpoint", str(iteration),
              *(["--config", args.config] if args.config else [])]  # fmt: skip
    proc = subprocess.run(export, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"export failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    deployment = MujocoDeployment(os.path.join(run_dir, "exported"), physics="referee")
    results = [run_command(deployment, command, ttw.REFEREE_SECONDS) for command in ttw.REFEREE_COMMANDS]
    return {"iteration": iteration, **ttw.referee_summary(results), "commands": results}


def vs_rsl_rl(spec, cfg: dict, source: str, sizes: list[int]) -> int:
    """``--vs_rsl_rl``: st_rl's PPO against rsl-rl-lib's on a synthetic batch shaped like the task's (observation
    sizes, MLP, epochs, mini-batches, steps per env of the recipe), one torch thread, at each of ``sizes``."""
    try:
        import rsl_rl  # noqa: F401
    except ImportError:
        raise cli.ConfigError("--vs_rsl_rl needs rsl-rl-lib: pip install -e '.[rsl_rl]'") from None
    import torch

    from legged_rl.learner_benchmark import compare_with_rsl_rl

    policy, algorithm = cfg["policy"], cfg["algorithm"]
    if policy.get("class_name", "ActorCritic") != "ActorCritic" or policy.get("actor_hidden_dims") != policy.get(
        "critic_hidden_dims"
    ):
        raise cli.ConfigError("--vs_rsl_rl compares an ActorCritic with equal actor and critic MLPs (policy section)")
    task = cli.build_task(spec, {**cfg["env"], "num_envs": 1}, 0, source)  # sizes only: nothing is compiled
    torch.set_num_threads(1)
    result = {"task": spec.name, "rsl_rl_version": _version("rsl-rl-lib"), "sizes": []}
    for n in sizes:
        result["sizes"].append(
            compare_with_rsl_rl(
                n,
                task.actor_obs.size,
                task.critic_obs.size,
                task.num_actions,
                steps=cfg["runner"]["num_steps_per_env"],
                hidden=tuple(policy["actor_hidden_dims"]),
                epochs=algorithm["num_learning_epochs"],
                mini_batches=algorithm["num_mini_batches"],
            )
        )
    print(json.dumps(result, indent=2))
    return 0


def _version(dist_name: str) -> str:
    from importlib.metadata import version

    return version(dist_name)


def depth_cost(spec, cfg: dict, env, num_envs: int, args, source: str) -> dict:
    """Cost of the forward depth image: env-steps/s at ``num_envs`` with the ``forward_depth`` segment in the
    actor observation against without (same run), and the analytic ray cast against ``mjx.ray``."""
    from legged_rl.benchmark import time_depth_methods, time_env_steps

    fd = cfg["env"]["forward_depth"]
    height, width = fd["resolution"]
    obs = cfg["env"]["observations"]
    with_depth = {**obs, "actor": {**obs["actor"], "forward_depth": {"scale": 1.0}}}
    depth_env = cli.make_env(
        spec, {**cfg["env"], "num_envs": num_envs, "observations": with_depth}, 0, args.device, source
    )
    plain_env = (
        env
        if env.num_envs == num_envs
        else cli.make_env(spec, {**cfg["env"], "num_envs": num_envs}, 0, args.device, source)
    )
    with_rate = time_env_steps(depth_env, args.steps, args.repeats)
    without_rate = time_env_steps(plain_env, args.steps, args.repeats)
    num_boxes = int(cfg["env"]["terrain"]["num_obstacles"]) + 2  # obstacles + side walls
    methods = time_depth_methods(num_envs, height, width, num_boxes, repeats=args.repeats, max_range=fd["max_range"])
    out = {
        "resolution": [height, width],
        "num_envs": num_envs,
        "camera_model": {k: fd[k] for k in CAMERA_MODEL_KEYS},
        "env_steps_per_s_with_depth": round(with_rate),
        "env_steps_per_s_without_depth": round(without_rate),
        "depth_us_per_env_step": round(1e6 / with_rate - 1e6 / without_rate, 2),
        "ray_cast_methods": methods,
    }
    if depth_env.env.depth_pipeline:  # a camera model (latency, frame period, noise, ...): its own cost
        ideal = {k: spec.default_config()["forward_depth"][k] for k in CAMERA_MODEL_KEYS}
        ideal_cfg = {**cfg["env"], "num_envs": num_envs, "observations": with_depth}
        ideal_cfg["forward_depth"] = {**fd, **ideal}
        ideal_env = cli.make_env(spec, ideal_cfg, 0, args.device, source)
        out["env_steps_per_s_with_ideal_depth"] = round(time_env_steps(ideal_env, args.steps, args.repeats))
    return out


# env.forward_depth keys of the camera model (legged_env/core/sensors.py)
CAMERA_MODEL_KEYS = ("latency_steps", "frame_period_steps", "noise_std", "missing_prob", "near_clip", "far_clip")


def nproc_result(n: int, one: dict, args) -> dict:
    """The ``--nproc`` entry for ``n`` processes: ``one`` (this process's timings) for 1, else a torchrun job."""
    if n == 1:
        seconds = one["collection_s"] + one["learning_s"]
        return {
            "nproc": 1,
            "num_envs": args.ppo_envs,
            "num_envs_per_rank": args.ppo_envs,
            "env_steps_per_s": one["env_steps_per_s"],
            "ppo_iteration": {
                "collection_s": round(one["collection_s"], 3),
                "learning_s": round(one["learning_s"], 3),
                "steps_per_iteration": one["steps_per_iteration"],
                "env_steps_per_s": round(one["steps_per_iteration"] / seconds),
            },
        }
    with tempfile.TemporaryDirectory(prefix="legged_env_bench_") as tmp:
        out = os.path.join(tmp, "rank0.json")
        argv = distributed.strip_flag(sys.argv, "--nproc") + ["--json_out", out]
        code = distributed.launch(n, argv)
        if code != 0:
            return {"nproc": n, "error": f"torchrun exited with {code}"}
        with open(out) as f:
            return json.load(f)


def rank_main(args) -> int:
    """One rank of an ``--nproc`` measurement (under torchrun); rank 0 writes the JSON to ``--json_out``."""
    spec, cfg, source = cli.load_config(args)
    dist = distributed.init_distributed(args.device)
    if dist is None:
        raise cli.ConfigError("the multi-process benchmark needs at least 2 processes")
    try:
        from legged_rl.benchmark import time_ranks
        from st_rl.utils.io import atomic_write_json

        env_cfg = cli.per_rank_env_cfg({**cfg["env"], "num_envs": args.ppo_envs}, dist.world_size)
        env = cli.make_env(spec, env_cfg, dist.rank, str(dist.device), source)
        runner = cli.build_runner(env, cfg, None, str(dist.device), source, dist=dist)
        cli.attach_reference_motion(runner, env, cfg, source)
        result = time_ranks(env, runner, dist, args.steps, args.repeats, args.ppo_iterations)
        if dist.is_main and args.json_out:
            atomic_write_json(args.json_out, result)
    finally:
        distributed.shutdown()
    return 0


def run() -> None:
    """Console-script entry point: parse the command line and run."""
    parser = cli.base_parser(__doc__)
    parser.add_argument(
        "--sizes", type=cli.int_list_at_least(1), default=[256, 1024, 4096], help="comma-separated num_envs to time"
    )
    parser.add_argument("--steps", type=cli.int_at_least(1), default=50, help="env steps per timing")
    parser.add_argument(
        "--repeats", type=cli.int_at_least(1), default=5, help="timings per size (the median is reported)"
    )
    parser.add_argument(
        "--ppo_envs", type=cli.int_at_least(1), default=1024, help="num_envs of the PPO iteration timing"
    )
    parser.add_argument(
        "--ppo_iterations", type=cli.int_at_least(1), default=3, help="PPO iterations timed (median reported)"
    )
    parser.add_argument(
        "--nproc",
        default=None,
        metavar="N[,N...]",
        help="also time training with these numbers of processes (e.g. 1,2 or auto) at --ppo_envs envs in total",
    )
    parser.add_argument(
        "--time_to_walk",
        action="store_true",
        help="instead: run the default training command (--seed, --set, --config, --num_envs passed on) and report "
        "the wall-clock and env steps to play's walking criteria (forward, full joystick); keeps the run in --log_root",
    )
    parser.add_argument(
        "--eval_every", type=cli.int_at_least(1), default=25, help="--time_to_walk: iterations between checkpoints"
    )
    parser.add_argument(
        "--eval_episodes", type=cli.int_at_least(1), default=100, help="--time_to_walk: episodes per evaluation"
    )
    parser.add_argument(
        "--max_iterations", type=cli.int_at_least(1), default=None, help="--time_to_walk: iterations to train"
    )
    parser.add_argument(
        "--train_nproc", default=None, metavar="N|auto", help="--time_to_walk: train.py's --nproc (default: its own)"
    )
    parser.add_argument(
        "--train_timeout_s", type=cli.positive_float, default=7200.0, help="--time_to_walk: training time limit"
    )
    parser.add_argument(
        "--eval_run",
        default=None,
        metavar="RUN_DIR",
        help="--time_to_walk: evaluate this run's checkpoints instead of training (times count from its config.json)",
    )
    parser.add_argument(
        "--referee",
        action="store_true",
        help="--time_to_walk: also export the first checkpoint that met the criteria and run joystick commands "
        "with it in plain MuJoCo (sim2sim's referee physics); result under 'referee'",
    )
    parser.add_argument(
        "--train_checkout",
        default=None,
        metavar="DIR",
        help="--time_to_walk: train with the code of another checkout of this repo (e.g. a git worktree of an older "
        "commit: before/after on one machine); the checkpoints are evaluated with this one's",
    )
    parser.add_argument(
        "--vs_rsl_rl",
        action="store_true",
        help="instead: the learner alone (act/store and update per rollout) against rsl-rl-lib's PPO on the same "
        "synthetic batch, one torch thread, at each --sizes (needs the rsl_rl extra)",
    )
    parser.add_argument("--json_out", default=None, help=argparse.SUPPRESS)  # a torchrun rank's result file
    cli.run_main(main, parser)


if __name__ == "__main__":
    run()

"""Export a trained policy for the robot: python scripts/export.py --task=walk --load_run -1.

Writes ``<run>/exported/policy.pt`` (TorchScript: normaliser baked in, deterministic, input = flat
actor observation; a recurrent policy holds its state in buffers, ``reset()`` at an episode start),
``<run>/exported/policy.onnx`` (the same graph for onnxruntime; recurrent state as explicit inputs/outputs,
policy.json's contents in its metadata; ``st_rl.utils.onnx_policy.OnnxPolicy`` runs it with numpy)
and ``<run>/exported/policy.json`` (observation layout, joint order, default joint positions, action
scale, PD gains, control dt, torque limits).

A policy built from other runs (the mutex family, e.g. ``--task=climb --config configs/climb_mutex.yaml``)
is built from the config file and exported as ONE module (sub-policies, switching and action conversion
inside) to ``--output`` or ``<log_root>/<experiment>/<date>_mutex/exported``.
"""

import os

from legged_rl import cli


def main(args) -> int:
    spec, cfg, source = cli.load_config(args)
    frozen = cli.is_frozen_policy(cfg["policy"])
    if frozen:  # built from the config file: nothing to load
        path, run_dir = source, cli.new_run_dir(args.log_root, cfg["runner"]["experiment_name"], "mutex")
        env_cfg = cli.resolve_env_overrides(spec, cfg["env"], ["env.num_envs=1"])
    else:
        path = cli.find_checkpoint(args, cfg["runner"]["experiment_name"])
        run_dir = os.path.dirname(path)
        env_cfg = cli.resolve_env_overrides(spec, cli.read_run_config(run_dir)["env"], ["env.num_envs=1"])

    from legged_rl.deploy import policy_metadata
    from st_rl.modules import load_policy_from_run
    from st_rl.utils.export import export_policy_as_jit
    from st_rl.utils.io import atomic_write_json
    from st_rl.utils.onnx_export import export_policy_as_onnx

    # Only the task description is needed (no stepping), so the env is built but never run.
    env = cli.build_task(spec, env_cfg, 0, source)
    if frozen:
        policy, _ = cli.build_frozen_policy(cfg, env, source, "cpu")
    else:
        policy = load_policy_from_run(run_dir, cli.checkpoint_iteration(path), "cpu")
    if policy.num_actor_obs != env.actor_obs.size or policy.num_actions != env.num_actions:
        raise cli.CheckpointError(
            f"checkpoint {path} does not fit the task: num_obs {env.actor_obs.size} (env) vs {policy.num_actor_obs}, "
            f"num_actions {env.num_actions} (env) vs {policy.num_actions}"
        )
    out_dir = args.output or os.path.join(run_dir, "exported")
    meta = policy_metadata(env, spec.name)
    meta["checkpoint"] = os.path.abspath(path)  # the config file for a policy built from other runs
    diff = export_policy_as_jit(policy, os.path.join(out_dir, "policy.pt"), env.actor_obs.size)
    onnx_diff = export_policy_as_onnx(policy, os.path.join(out_dir, "policy.onnx"), env.actor_obs.size, metadata=meta)
    atomic_write_json(os.path.join(out_dir, "policy.json"), meta)
    print(
        f"exported {os.path.join(out_dir, 'policy.pt')}, policy.onnx and policy.json from {path} "
        f"(max abs diff vs eager act_inference, sequence with resets: TorchScript {diff:.2g}, ONNX {onnx_diff:.2g})"
    )
    return 0


def run() -> None:
    """Console-script entry point: parse the command line and run."""
    parser = cli.base_parser(__doc__)
    parser.add_argument("--output", default=None, help="output directory (default: <run>/exported)")
    cli.run_main(main, parser)


if __name__ == "__main__":
    run()

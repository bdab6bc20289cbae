"""Command-line plumbing shared by scripts/train.py, play.py, export.py and benchmark.py.

legged_gym-style flags, a task's YAML config resolved against every default, ``--set`` overrides,
run directories, and one clear error line (non-zero exit) for every bad input.

Bad input is reported as ONE ``error: ...`` line on stderr and exit code 2, before any run directory is
written: argparse values (:class:`ArgumentParser`), config keys and values (:func:`load_config`,
:func:`st_rl.runners.config.resolve_train_cfg`), and what a constructor rejects while building the env,
the policy or the algorithm from the config (:func:`build_task`, :func:`build_runner`,
:func:`st_rl.modules.build_policy`), all as :class:`ConfigError` or :class:`CheckpointError`. Any other
exception is a bug and keeps its traceback.
"""

import argparse
import json
import os
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from legged_env.api import RECIPE_SECTIONS, build_task, check_env_cfg, open_keys, read_recipe
from legged_env.config import load_yaml, merge_strict
from legged_env.errors import ConfigError as EnvConfigError
from legged_env.tasks import TaskSpec, get_task
from st_rl.runners.config import resolve_train_cfg
from st_rl.utils.checkpoint import checkpoint_iteration, get_load_path  # noqa: F401  (cli.checkpoint_iteration)
from st_rl.utils.config import ConfigError
from st_rl.utils.errors import CheckpointError, NonFiniteError

# A bad config value, from either package (each has its own type: neither imports the other).
CONFIG_ERRORS = (ConfigError, EnvConfigError)

# The shipped recipes (package data; ``configs/`` at the repository root links here).
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
# Where the packages are (the repository, or site-packages): shipped files such as motion clips are named
# relative to it in the configs (``legged_env/robots/go1/motions/...``).
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SECTIONS = RECIPE_SECTIONS
TRAIN_SECTIONS = ("policy", "algorithm", "runner")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the scripts' error convention: one ``error: ...`` line and exit 2 (no usage dump)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def int_at_least(low: int, note: str = "") -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``low`` (``note`` explains a special value, e.g. -1)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}{note}, got {text!r}")
        return value

    return parse


def positive_float(text: str) -> float:
    """An argparse ``type``: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0.0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def int_list_at_least(low: int) -> Callable[[str], list[int]]:
    """An argparse ``type``: comma-separated integers, each >= ``low`` (``"256,1024"`` -> ``[256, 1024]``)."""
    one = int_at_least(low)

    def parse(text: str) -> list[int]:
        try:
            return [one(item) for item in text.split(",")]
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers >= {low}, got {text!r}") from None

    return parse


def base_parser(description: str) -> argparse.ArgumentParser:
    """Flags every script takes (legged_gym's names)."""
    p = ArgumentParser(description=description)
    p.add_argument("--task", default="walk", help="registered task name (default: walk)")
    p.add_argument("--config", default=None, help="YAML config (default: configs/<task>.yaml)")
    p.add_argument(
        "--num_envs",
        type=int_at_least(1),
        default=None,
        help="number of parallel envs in total; with N processes (--nproc, torchrun) each runs num_envs / N",
    )
    p.add_argument("--seed", type=int, default=None, help="seeds torch, the envs and domain randomisation")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0 (default: cpu)")
    p.add_argument("--experiment_name", default=None, help="logs/<experiment_name>/ (default: runner.experiment_name)")
    p.add_argument("--load_run", default=None, help="run directory name under logs/<experiment>, or -1 for the latest")
    p.add_argument(
        "--checkpoint",
        type=int_at_least(-1, " (-1: the latest)"),
        default=-1,
        help="model_<iter>.pt to load, -1 for the latest",
    )
    p.add_argument("--headless", action="store_true", help="accepted for legged_gym compatibility (always headless)")
    p.add_argument("--log_root", default="logs", help="root of run directories (default: ./logs)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value (YAML syntax), e.g. --set env.commands.lin_vel_x=[0.3,1.0]; repeatable",
    )
    return p


def run_main(main: Callable[[argparse.Namespace], int | None], parser: argparse.ArgumentParser) -> None:
    """Parse args and run ``main``; known user errors print one line to stderr and exit non-zero.

    SIGTERM (what schedulers and ``kill`` send) is handled like Ctrl-C, so training saves a checkpoint.
    Under torchrun every message names the rank (``error: [rank 1] ...``), and so does any other
    exception, before its traceback; the launcher then stops the other ranks.
    """
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    rank = f"[rank {os.environ['RANK']}] " if "RANK" in os.environ and "LOCAL_RANK" in os.environ else ""
    try:
        code = main(args)
    except (*CONFIG_ERRORS, CheckpointError) as e:
        print(f"error: {rank}{e}", file=sys.stderr)
        sys.exit(2)
    except NonFiniteError as e:
        print(f"error: {rank}{e} (training stopped; the last checkpoint on disk is the last good one)", file=sys.stderr)
        sys.exit(3)
    except KeyboardInterrupt:
        print(f"\n{rank}interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        if rank:
            print(f"error: {rank}failed with {type(e).__name__}: {e}", file=sys.stderr)
        raise
    sys.exit(code or 0)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def parse_override(item: str) -> tuple[list[str], object]:
    """``"env.commands.lin_vel_x=[0.3,1.0]"`` -> (["env", "commands", "lin_vel_x"], [0.3, 1.0])."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected SECTION.KEY=VALUE")
    key, raw = item.split("=", 1)
    path = key.strip().split(".")
    if len(path) < 2 or path[0] not in SECTIONS or not all(path):
        raise ConfigError(f"--set {item}: key must start with one of {', '.join(SECTIONS)} (e.g. env.num_envs=64)")
    try:
        value = load_yaml(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item}: value is not valid YAML ({str(e).splitlines()[0]})") from None
    return path, value


def _nested(path: list[str], value) -> dict:
    out: dict = value
    for key in reversed(path):
        out = {key: out}
    return out


def read_yaml(path: Path) -> dict:
    """Reads a recipe file (:func:`legged_env.api.read_recipe`); a missing file, bad YAML or an unknown section is a
    ConfigError."""
    return read_recipe(path)


def resolve_config(spec: TaskSpec, raw: dict, source: str, overrides: list[str]) -> dict:
    """Full config ``{env, policy, algorithm, runner}``: ``raw`` over every default, then ``--set`` items."""
    keys = open_keys(spec)
    env = merge_strict(spec.default_config(), raw.get("env") or {}, source, "env", keys)
    train_raw = {k: dict(raw.get(k) or {}) for k in TRAIN_SECTIONS}
    env_items, train_items = [], []
    for item in overrides:
        path, value = parse_override(item)
        where = f"--set {item}"
        if path[0] == "env":
            env = merge_strict(env, _nested(path[1:], value), where, "env", keys, replace_open=False)
            env_items.append(where)
        else:
            section = dict(train_raw[path[0]])
            node = section
            for key in path[1:-1]:
                node[key] = dict(node.get(key) or {})
                node = node[key]
            node[path[-1]] = value
            train_raw[path[0]] = section
            train_items.append(where)
    # Checked once, after every override: switching policy.class_name may need keys that later items set.
    train = resolve_train_cfg(train_raw, f"{source} with {', '.join(train_items)}" if train_items else source)
    check_env_cfg(env, f"{source} with {', '.join(env_items)}" if env_items else source)
    return {"env": env, **train}


def check_device(device: str) -> None:
    """ConfigError for a ``--device`` torch cannot parse or this machine does not have (e.g. cuda without a GPU)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"--device {device!r} is not a torch device ({str(e).splitlines()[0]})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device!r}: CUDA is not available (torch {torch.__version__}, no usable GPU)")


def load_config(args: argparse.Namespace) -> tuple[TaskSpec, dict, str]:
    """Task spec, resolved config with the CLI flags applied, and the config file path."""
    spec = get_task(args.task)
    path = Path(args.config) if args.config else CONFIG_DIR / spec.config_file
    flags = []
    if args.num_envs is not None:
        flags.append(f"env.num_envs={args.num_envs}")
    if args.seed is not None:
        flags.append(f"runner.seed={args.seed}")
    if getattr(args, "max_iterations", None) is not None:
        flags.append(f"runner.max_iterations={args.max_iterations}")
    if args.experiment_name is not None:
        flags.append(f"runner.experiment_name={args.experiment_name}")
    if getattr(args, "run_name", None):
        flags.append(f"runner.run_name={args.run_name}")
    if getattr(args, "logger", None):  # train.py --logger
        flags.append(f"runner.logger={args.logger}")
    if getattr(args, "teacher", None):  # train.py --teacher: the same as --set algorithm.teacher_run=<run dir>
        flags.append(f"algorithm.teacher_run={json.dumps(str(args.teacher))}")
    if getattr(args, "resume", False):  # train.py: the run to resume from is recorded in config.json
        flags.append("runner.resume=true")
        if args.load_run is not None:
            flags.append(f"runner.load_run={json.dumps(str(args.load_run))}")
        flags.append(f"runner.checkpoint={args.checkpoint}")
    cfg = resolve_config(spec, read_yaml(path), str(path), flags + list(args.overrides))
    check_device(args.device)
    return spec, cfg, str(path)


@contextmanager
def config_errors(what: str) -> Iterator[None]:
    """Turns a ValueError/TypeError raised while building an object from the config into a ConfigError that
    names ``what`` (the section and file), so it prints as one line. Only constructor calls go in here:
    an error anywhere else is a bug and keeps its traceback. A ConfigError passes unchanged."""
    try:
        yield
    except CONFIG_ERRORS:
        raise
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{what}: {e}") from e


def make_env(spec: TaskSpec, env_cfg: dict, seed: int, device: str, source: str = "<config>"):
    """Builds the JAX task and wraps it as a torch VecEnv."""
    from legged_rl.torch_vec_env import TorchVecEnv  # imports jax; keep `--help` fast

    return TorchVecEnv(build_task(spec, env_cfg, seed, source), device=device)


def build_runner(env, cfg: dict, log_dir: str | None, device: str, source: str, dist=None):
    """``OnPolicyRunner`` for ``cfg``'s training sections; writes nothing (the run directory is made by ``learn``).

    The policy's constructor errors already arrive as ConfigError (st_rl.modules.build_policy); what the
    algorithm's constructor (or its storage) rejects becomes one naming the algorithm section.
    """
    from st_rl.runners import OnPolicyRunner

    train_cfg = {k: cfg[k] for k in TRAIN_SECTIONS}
    with config_errors(f"algorithm {cfg['algorithm']['class_name']} in {source}"):
        return OnPolicyRunner(env, train_cfg, log_dir, device, source, dist=dist)


def per_rank_env_cfg(env_cfg: dict, world_size: int) -> dict:
    """``env_cfg`` with one process's share of ``num_envs`` (the total over all processes); must divide."""
    total = env_cfg["num_envs"]
    if total % world_size:
        raise ConfigError(
            f"--num_envs {total} (the total over all processes) is not divisible by {world_size} processes"
        )
    return {**env_cfg, "num_envs": total // world_size}


# Below this many envs per process a second CPU process costs more (start-up, a compile each, gradient all-reduces)
# than it gains; at 512 per process two pinned processes train faster than one (scripts/benchmark.py --nproc 1,2).
CPU_MIN_ENVS_PER_PROCESS = 256


def training_layout(nproc: str | None, device: str, num_envs: int) -> tuple[int, str]:
    """How many processes ``train.py`` runs, and the start line saying so and how to override it.

    ``--nproc`` given: that (``auto``: one per core, or per GPU). Otherwise on CPU: one pinned process per usable
    core (each with one torch and one XLA thread), as many as divide ``num_envs`` with at least
    :data:`CPU_MIN_ENVS_PER_PROCESS` envs each; one process (this one) for fewer envs or on an accelerator.
    """
    from st_rl.utils import distributed

    pinned = "each pinned to one core with 1 torch and 1 XLA thread"
    if nproc is not None:
        n = distributed.resolve_nproc(nproc, device)
        where = (
            (f", {pinned}" if n > 1 else ", pinned to one core with 1 torch and 1 XLA thread")
            if device == "cpu"
            else ""
        )
        return n, f"layout: {n} process{'es' if n > 1 else ''} (--nproc {nproc}){where}"
    if device != "cpu":
        return 1, f"layout: 1 process on {device} (--nproc N|auto: one per GPU)"
    cores = distributed.resolve_nproc("auto", "cpu")  # usable cores
    fits = [k for k in range(cores, 1, -1) if num_envs % k == 0 and num_envs // k >= CPU_MIN_ENVS_PER_PROCESS]
    if fits:
        n = fits[0]
        return n, (
            f"layout: {n} processes x {num_envs // n} envs on {cores} cores, {pinned} (the CPU default for "
            f">= {CPU_MIN_ENVS_PER_PROCESS} envs per process; --nproc 1 for one process)"
        )
    return 1, (
        f"layout: 1 process, {num_envs} envs (the CPU default below {CPU_MIN_ENVS_PER_PROCESS} envs per core; "
        "--nproc N for N pinned processes)"
    )


def new_run_dir(log_root: str, experiment: str, run_name: str) -> str:
    """``<log_root>/<experiment>/<YYYY-mm-dd_HH-MM-SS>[_<run_name>]`` (not created here)."""
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    return os.path.join(log_root, experiment, f"{stamp}_{run_name}" if run_name else stamp)


def find_checkpoint(args: argparse.Namespace, experiment: str) -> str:
    """Checkpoint path from --load_run/--checkpoint under ``<log_root>/<experiment>``.

    Raises CheckpointError listing the runs or checkpoints that exist.
    """
    return checkpoint_path(args.log_root, experiment, args.load_run, args.checkpoint)


def checkpoint_path(log_root: str, experiment: str, load_run: str | int | None, checkpoint: int) -> str:
    """``<log_root>/<experiment>/<load_run>/model_<checkpoint>.pt``; None or -1 pick the latest."""
    return get_load_path(os.path.join(log_root, experiment), -1 if load_run is None else load_run, checkpoint)


def init_from_checkpoint(run_dir: str, checkpoint: int) -> str:
    """The checkpoint ``--init_from run_dir`` loads (``model_<checkpoint>.pt``, -1 the latest); CheckpointError
    naming the directory when it is not a run directory."""
    if not os.path.isfile(os.path.join(run_dir, "config.json")):
        raise CheckpointError(f"--init_from {run_dir}: not a run directory (no config.json)")
    return get_load_path(
        os.path.dirname(os.path.abspath(run_dir)), os.path.basename(os.path.abspath(run_dir)), checkpoint
    )


def is_frozen_policy(policy_cfg: dict) -> bool:
    """True for policies built from other runs rather than trained (the mutex family): play.py and export.py
    build them from the config file instead of loading a checkpoint."""
    from st_rl.modules import POLICY_CLASSES
    from st_rl.modules.actor_critic_mutex import ActorCriticMutex

    cls = POLICY_CLASSES.get(policy_cfg.get("class_name"))
    return cls is not None and issubclass(cls, ActorCriticMutex)


def resolve_run_dir(path: str) -> str:
    """A run directory as given, or the latest run of an experiment directory (e.g. ``logs/walk``)."""
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "config.json")):
        return os.path.dirname(get_load_path(path, -1, -1))
    return path


def build_frozen_policy(cfg: dict, task, source: str, device: str):
    """A mutex policy from ``cfg["policy"]`` for the JAX ``task``'s observations; its ``sub_policy_paths`` may
    name experiment directories (their latest run). Returns ``(policy, policy_cfg with resolved paths)``."""
    from st_rl.modules import build_policy

    policy_cfg = dict(cfg["policy"])
    paths = policy_cfg.get("sub_policy_paths")
    if isinstance(paths, (list, tuple)):
        policy_cfg["sub_policy_paths"] = [resolve_run_dir(str(p)) for p in paths]
    policy = build_policy(
        policy_cfg,
        task.actor_obs.size,
        task.critic_obs.size,
        task.num_actions,
        OrderedDict(task.actor_obs.segments),
        OrderedDict(task.critic_obs.segments),
        source=source,
    )
    return policy.to(device).eval(), policy_cfg


def check_teacher(cfg: dict) -> None:
    """For a distillation algorithm (TPPO): ``algorithm.teacher_run`` is given and is a run directory with the
    ``algorithm.teacher_checkpoint`` (or a mutex config.json), checked before any env is built; ConfigError (one
    line) otherwise. A no-op for other algorithms. Whether the env provides the teacher's segments is checked when
    TPPO is built, on the env's layout."""
    from st_rl.algorithms import ALGORITHM_CLASSES
    from st_rl.algorithms.tppo import TPPO, read_teacher_run

    alg = cfg["algorithm"]
    if issubclass(ALGORITHM_CLASSES[alg["class_name"]], TPPO):
        read_teacher_run(alg["teacher_run"], alg["teacher_checkpoint"])


def read_run_config(run_dir: str) -> dict:
    """The ``config.json`` a training run wrote; missing or unreadable -> CheckpointError."""
    path = os.path.join(run_dir, "config.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None


def resolve_env_overrides(spec: TaskSpec, env_cfg: dict, overrides: list[str]) -> dict:
    """A run's env config (checked against the task's defaults) with ``env.*`` ``--set`` items applied."""
    keys = open_keys(spec)
    env = merge_strict(spec.default_config(), env_cfg, "config.json", "env", keys)
    for item in overrides:
        path, value = parse_override(item)
        env = merge_strict(env, _nested(path[1:], value), f"--set {item}", "env", keys, replace_open=False)
    check_env_cfg(env, "config.json with the --set items" if overrides else "config.json")
    return env


def check_policy_fits(policy, env, path: str) -> None:
    """CheckpointError naming both sizes when a policy's observation/action sizes differ from the env's."""
    want = {"num_obs": env.num_obs, "num_actions": env.num_actions}
    have = {"num_obs": policy.num_actor_obs, "num_actions": policy.num_actions}
    bad = [f"{k} {want[k]} (env) vs {have[k]} (checkpoint)" for k in want if want[k] != have[k]]
    if bad:
        raise CheckpointError(f"checkpoint {path} does not fit the environment: {', '.join(bad)}")


def resolve_motion_files(files: list[str], where: str) -> list[str]:
    """Motion clip paths as given, or relative to the repository root (where the shipped clips live)."""
    resolved = []
    for f in files:
        path = Path(f) if Path(f).exists() else PACKAGE_ROOT / f
        if not path.exists():
            raise ConfigError(f"motion file '{f}' in {where} not found (relative paths: cwd or {PACKAGE_ROOT})")
        resolved.append(str(path))
    return resolved


def attach_reference_motion(runner, env, cfg: dict, source: str) -> None:
    """For an algorithm with a motion prior (APPO): load ``algorithm.motion_files`` for this env (its AMP
    layout, joint order and control dt), so bad clips stop the run before training starts."""
    files = cfg["algorithm"].get("motion_files")
    if not files or not hasattr(runner.alg, "set_reference_motion"):
        return
    if env.amp_obs_segments is None:
        raise ConfigError(f"algorithm.motion_files in {source}: task has no AMP observation (env.observations.amp)")
    from st_rl.datasets.motion_loader import MotionLoader

    try:
        loader = MotionLoader(
            resolve_motion_files(files, source),
            env.amp_obs_segments,
            env.env.robot.JOINT_NAMES,
            float(env.env.dt),
            device=env.device,
        )
    except ValueError as e:
        raise ConfigError(str(e)) from e
    runner.alg.set_reference_motion(loader)

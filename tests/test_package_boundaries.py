"""The three packages' boundaries, read from the import graph.

``legged_env`` (simulator: jax, mujoco, numpy) and ``st_rl`` (learner: torch) never import each other nor the
application ``legged_rl``, which sits on top of both. No module imports itself back through others (no cycles,
counting imports inside functions too: a lazy import that dodges a cycle is still one).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("legged_env", "st_rl", "legged_rl")
# package -> packages of ours it may import
ALLOWED = {"legged_env": set(), "st_rl": set(), "legged_rl": {"legged_env", "st_rl"}}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Our modules that ``path`` imports anywhere in it (top level or inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # ``from a.b import c``: the module a.b.c, else the names of a.b
                name = f"{node.module}.{alias.name}"
                if name in modules or node.module in modules:
                    out.add(name if name in modules else node.module)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_packages_import_only_what_they_may():
    bad = []
    for module, deps in _graph().items():
        pkg = module.split(".")[0]
        for dep in deps:
            dep_pkg = dep.split(".")[0]
            if dep_pkg != pkg and dep_pkg not in ALLOWED[pkg]:
                bad.append(f"{module} imports {dep}")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_cycle_check_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


_IMPORT_ALL = """
import importlib, pkgutil, sys
pkg = importlib.import_module({pkg!r})
for info in pkgutil.walk_packages(pkg.__path__, {pkg!r} + "."):
    importlib.import_module(info.name)
print(" ".join(sorted({{m.split(".")[0] for m in sys.modules}} & {forbidden!r})))
"""


@pytest.mark.parametrize(
    "pkg,forbidden",
    [
        ("legged_env", {"torch", "st_rl", "legged_rl"}),
        ("st_rl", {"jax", "jaxlib", "mujoco", "legged_env", "legged_rl"}),
    ],
)
def test_importing_every_module_of_a_package_loads_no_forbidden_package(pkg, forbidden):
    code = _IMPORT_ALL.format(pkg=pkg, forbidden=forbidden)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"importing {pkg} loaded {out.stdout.strip()}"


def test_both_sides_declare_the_same_engaging_block_layout():
    from legged_env.terrain import engaging_block as env_side
    from st_rl.env import engaging_block as learner_side

    names = ("ENGAGING_BLOCK_SEGMENT", "OBSTACLE_TYPES", "DISTANCE", "TYPE_START", "DEPTH", "CRITICAL_HEIGHT")
    for name in (*names, "ENGAGING_BLOCK_SIZE"):
        assert getattr(env_side, name) == getattr(learner_side, name), name


def test_every_source_directory_is_a_package_that_setup_ships():
    """A non-editable ``pip install .`` ships what ``find_packages`` finds: a directory of modules without an
    ``__init__.py`` would be left out (and fail at import, only outside the repository)."""
    from setuptools import find_packages

    shipped = set(find_packages(str(ROOT), include=[f"{p}*" for p in PACKAGES]))
    dirs = {_module_name(p.parent / "__init__.py") for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    assert dirs <= shipped, sorted(dirs - shipped)
    assert sorted(p.name for p in (ROOT / "legged_rl" / "configs").glob("*.yaml"))  # package data: the recipes


def test_resolving_a_config_loads_no_jax():
    """A config error is reported before JAX / MJX load (seconds per command): the task registry, the task configs
    and legged_env.make's validation are pure Python; the env class is imported when an env is built."""
    code = (
        "import sys\n"
        "from legged_env.api import env_config\n"
        "from legged_rl import cli\n"
        "env_config('climb', 4, config=cli.CONFIG_DIR / 'climb.yaml', terrain={'height': [0.1, 0.2]})\n"
        "print(' '.join(m for m in ('jax', 'mujoco.mjx') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    "adapter,package,extra",
    [("rsl_rl_env", "rsl-rl-lib", "rsl_rl"), ("torchrl_env", "torchrl", "torchrl")],
)
def test_an_adapter_without_its_extra_is_a_one_line_import_error(monkeypatch, adapter, package, extra):
    module = f"legged_rl.adapters.{adapter}"
    importlib.import_module(module)  # imported with the extra present (.[dev]), then forgotten with the extra
    monkeypatch.delitem(sys.modules, module)
    root = "rsl_rl" if extra == "rsl_rl" else "torchrl"
    for name in [m for m in sys.modules if m == root or m.startswith(root + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, root, None)
    with pytest.raises(ImportError) as e:
        importlib.import_module(module)
    assert str(e.value) == f'{module} needs {package}: pip install -e ".[{extra}]"'
    assert e.value.__cause__ is None and e.value.__suppress_context__

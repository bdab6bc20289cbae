"""Strict nested-config merging: unknown keys and wrong types are errors that name key and file."""

import copy
import difflib
import re
from collections.abc import Mapping

import yaml

from legged_env.errors import ConfigError


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats: ``1e-4`` and ``-2E3`` are numbers (YAML 1.1, PyYAML's default,
    reads them as strings unless they have a dot, so ``--set algorithm.learning_rate=5e-4`` was a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str):
    """``yaml.safe_load`` with YAML 1.2 floats (see :class:`_Loader`); raises ``yaml.YAMLError`` as it does."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def _type_ok(default, value) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def merge_strict(
    defaults: dict,
    override: Mapping,
    source: str,
    prefix: str = "",
    open_keys: frozenset = frozenset(),
    replace_open: bool = True,
):
    """Returns a deep copy of ``defaults`` updated by ``override``.

    Every key of ``override`` must exist in ``defaults`` with a value of the same type
    (int is accepted for float, list for tuple). Keys whose dotted path is in ``open_keys``
    hold name -> value mappings (e.g. reward scales, whose names the task checks against its
    reward functions): a config file replaces them whole (``replace_open``), a command-line
    ``--set`` updates or adds single entries.

    Raises:
        ConfigError: one line naming the dotted key and ``source``.
    """
    out = copy.deepcopy(defaults)
    if not isinstance(override, Mapping):
        raise ConfigError(f"'{prefix or '<root>'}' in {source} must be a mapping, got {type(override).__name__}")
    for key, value in override.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in out:
            close = difflib.get_close_matches(str(key), [str(k) for k in out], n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (valid: {', '.join(map(str, out))})"
            raise ConfigError(f"unknown config key '{path}' in {source}{hint}")
        default = out[key]
        if path in open_keys:
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key '{path}' in {source} must be a mapping, got {value!r}")
            out[key] = copy.deepcopy(dict(value)) if replace_open else {**default, **copy.deepcopy(dict(value))}
        elif isinstance(default, dict):
            out[key] = merge_strict(default, value, source, path, open_keys, replace_open)
        elif not _type_ok(default, value):
            raise ConfigError(
                f"config key '{path}' in {source} expects {type(default).__name__}, got {value!r} "
                f"({type(value).__name__})"
            )
        else:
            out[key] = copy.deepcopy(value)
    return out

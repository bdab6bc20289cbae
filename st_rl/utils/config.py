"""Strict config handling: every key must exist in the constructor it configures.

A config section (``policy``, ``algorithm``, ``runner``) is a plain dict of keyword arguments.
:func:`resolve_kwargs` checks it against the signature of the class it configures, so a typo is an
error naming the key and the file instead of being silently ignored, and returns a *new* dict with
every default filled in (what ``config.json`` records).
"""

from __future__ import annotations

import copy
import difflib
import inspect
from collections.abc import Callable, Iterable
from typing import Any


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _type_ok(default: Any, value: Any) -> bool:
    """Whether ``value`` may replace ``default`` (int for float, list/tuple interchangeable, no bool for numbers)."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        if isinstance(value, bool):
            return False
        if isinstance(default, float):
            return isinstance(value, (int, float))
        return isinstance(value, int)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    if isinstance(default, dict):
        return isinstance(value, dict)
    return isinstance(value, type(default))


def _expected_name(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, float):
        return "float"
    if isinstance(default, (list, tuple)):
        return "list"
    return type(default).__name__


def signature_params(fn_or_cls: Callable) -> dict[str, inspect.Parameter]:
    """Named keyword-capable parameters of a function or class constructor (no ``self``/``*args``/``**kw``).

    For a class whose ``__init__`` forwards ``**kwargs`` to ``super().__init__`` (a mixin), the parameters
    of the next constructors in the MRO are included, up to the first one without ``**kwargs``.
    """
    if not inspect.isclass(fn_or_cls):
        return _own_params(fn_or_cls)[0]
    params: dict[str, inspect.Parameter] = {}
    for klass in fn_or_cls.__mro__:
        if "__init__" not in vars(klass) or klass.__module__.startswith("torch."):
            continue
        own, forwards = _own_params(vars(klass)["__init__"])
        for name, p in own.items():
            params.setdefault(name, p)
        if not forwards:
            break
    return params


def _own_params(fn: Callable) -> tuple[dict[str, inspect.Parameter], bool]:
    """(named keyword-capable parameters, whether ``fn`` takes ``**kwargs``)."""
    params = inspect.signature(fn).parameters
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    named = {name: p for name, p in params.items() if name != "self" and p.kind in kinds}
    return named, any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())


def resolve_kwargs(
    fn_or_cls: Callable,
    kwargs: dict[str, Any],
    section: str,
    source: str,
    exclude: Iterable[str] = (),
) -> dict[str, Any]:
    """Validate ``kwargs`` against the signature of ``fn_or_cls`` and fill in defaults.

    Args:
        fn_or_cls: function or class whose (constructor) signature defines the valid keys.
        kwargs: the config section; never modified.
        section: section name used in messages, e.g. ``"algorithm"``.
        source: where the config came from (file name), used in messages.
        exclude: parameter names injected by the caller (e.g. ``num_obs``); they may not appear
            in ``kwargs`` and are not in the returned dict.

    Returns:
        A new dict with every non-excluded parameter: the given value or the signature default.

    Raises:
        ConfigError: unknown key (with the closest valid name), a wrong value type (checked against
            the default's type when the default is not None), or a required parameter missing.
    """
    exclude = set(exclude)
    params = {name: p for name, p in signature_params(fn_or_cls).items() if name not in exclude}
    valid = sorted(params)
    for key in kwargs:
        if key not in params:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            injected = "it is set from the environment; " if key in exclude else ""
            raise ConfigError(f"unknown key '{section}.{key}' in {source} ({injected}{hint}valid: {', '.join(valid)})")
    resolved: dict[str, Any] = {}
    for name, param in params.items():
        default = param.default
        if name not in kwargs:
            if default is inspect.Parameter.empty:
                raise ConfigError(f"missing required key '{section}.{name}' in {source}")
            resolved[name] = list(default) if isinstance(default, tuple) else default
            continue
        value = kwargs[name]
        if default is not inspect.Parameter.empty and default is not None and not _type_ok(default, value):
            raise ConfigError(
                f"wrong type for '{section}.{name}' in {source}: expected {_expected_name(default)}, "
                f"got {_describe(value)}"
            )
        resolved[name] = copy.deepcopy(value)
    return resolved

"""Process-wide JAX settings: the persistent compilation cache, so a second start skips compiling."""

import os
from pathlib import Path

import jax

_configured = False


def enable_compilation_cache(cache_dir: str | None = None) -> str:
    """Turns on JAX's persistent compilation cache (idempotent) and returns its directory.

    The directory is ``cache_dir``, else ``$LEGGED_ENV_JAX_CACHE``, else
    ``~/.cache/legged_env/jax`` (the user's own cache directory).
    """
    global _configured
    path = cache_dir or os.environ.get("LEGGED_ENV_JAX_CACHE") or str(Path.home() / ".cache" / "legged_env" / "jax")
    if not _configured:
        Path(path).mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        _configured = True
    return path

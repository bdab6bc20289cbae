"""Batched env core: State, PD control, decimation, auto-reset, rewards and observations by name."""

import contextlib
import io

# mujoco.mjx prints "Failed to import warp" on import when its optional GPU backend is not installed (every
# script would start with those two lines; benchmark.py and play.py print JSON). Swallow them: modules outside this
# package import mjx from here (``from legged_env.core import mjx``) so that this runs first.
with contextlib.redirect_stdout(io.StringIO()):
    from mujoco import mjx  # noqa: F401

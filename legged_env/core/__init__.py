"""Batched env core: State, PD control, decimation, auto-reset, rewards and observations by name."""

import contextlib
import io

# mujoco.mjx prints "Failed to import warp" on import when its optional GPU backend is not installed (every
# script would start with those two lines; benchmark.py and play.py print JSON). Swallow them.
with contextlib.redirect_stdout(io.StringIO()):
    import mujoco.mjx  # noqa: F401

"""Batched env core: State, PD control, decimation, auto-reset, rewards and observations by name."""

import contextlib
import sys

# mujoco.mjx prints notes about its optional Warp backend to stdout on import; send them to stderr so
# the scripts' stdout stays clean (benchmark.py and play.py print JSON there).
with contextlib.redirect_stdout(sys.stderr):
    import mujoco.mjx  # noqa: F401

"""Datasets the learner samples from besides its own rollouts (reference motion for AMP)."""

from st_rl.datasets.motion_loader import (
    MotionClip,
    MotionLoader,
    check_clip,
    find_motion_files,
    frames_until_done,
    load_motion,
    save_motion,
)

__all__ = [
    "MotionClip",
    "MotionLoader",
    "check_clip",
    "find_motion_files",
    "frames_until_done",
    "load_motion",
    "save_motion",
]

"""Robot descriptions: one folder per robot with an MJCF and a constants module."""

from legged_env.robots.go1 import constants as go1

ROBOTS = {"go1": go1}


def get_robot(name: str):
    """Returns the constants module of robot ``name``; unknown name -> ValueError listing known ones."""
    if name not in ROBOTS:
        raise ValueError(f"unknown robot '{name}' (known: {', '.join(sorted(ROBOTS))})")
    return ROBOTS[name]

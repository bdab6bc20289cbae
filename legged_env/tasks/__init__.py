"""Task registry: ``--task=<name>`` selects a task class, its default env config and ``configs/<name>.yaml``."""

from legged_env.tasks.registry import TASKS, TaskSpec, get_task

__all__ = ["TASKS", "TaskSpec", "get_task"]

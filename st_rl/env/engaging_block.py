"""The ``engaging_block`` observation segment: the one layout both the climb task and the mutex policies use.

It describes the obstacle the robot is about to engage (or is on), as 6 numbers per env, in this order:

====  ===================  =========================================================================
 col  name                 meaning
====  ===================  =========================================================================
  0   ``distance``         distance (m, along the track) from the robot to the next obstacle edge;
                           negative once the robot is on / past that edge
 1-3  ``type`` one-hot     obstacle type: ``none`` (flat ahead), ``climb`` (a step up), ``jump_down``
                           (a step down); exactly one is 1
  4   ``depth``            obstacle length along the track (m)
  5   ``critical_height``  signed height of the obstacle top relative to the ground before it (m):
                           positive for a climb, negative for a jump-down, 0 for none
====  ===================  =========================================================================

The segment's shape is ``(ENGAGING_BLOCK_SIZE,)``; values are raw (unscaled) metres. The env that produces it
(``legged_env.terrain.engaging_block``) declares the same layout; ``tests/test_package_boundaries.py`` checks
that the two agree (neither package imports the other).
"""

from __future__ import annotations

import torch

ENGAGING_BLOCK_SEGMENT = "engaging_block"
OBSTACLE_TYPES = ("none", "climb", "jump_down")
DISTANCE = 0
TYPE_START = 1
DEPTH = TYPE_START + len(OBSTACLE_TYPES)
CRITICAL_HEIGHT = DEPTH + 1
ENGAGING_BLOCK_SIZE = CRITICAL_HEIGHT + 1


def make_engaging_block(
    distance: torch.Tensor, obstacle_type: torch.Tensor, depth: torch.Tensor, critical_height: torch.Tensor
) -> torch.Tensor:
    """Build the segment ``(N, ENGAGING_BLOCK_SIZE)`` from ``(N,)`` tensors; ``obstacle_type`` indexes
    ``OBSTACLE_TYPES``."""
    one_hot = torch.nn.functional.one_hot(obstacle_type.long(), len(OBSTACLE_TYPES)).to(distance.dtype)
    return torch.cat([distance[:, None], one_hot, depth[:, None], critical_height[:, None]], dim=-1)


def obstacle_type_index(block: torch.Tensor) -> torch.Tensor:
    """``(..., ENGAGING_BLOCK_SIZE) -> (...)`` long index into ``OBSTACLE_TYPES``."""
    return block[..., TYPE_START:DEPTH].argmax(dim=-1)

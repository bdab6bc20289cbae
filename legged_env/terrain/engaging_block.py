"""Layout of the climb task's ``engaging_block`` observation segment (produced by :meth:`Tracks.engaging_block`).

6 raw (unscaled) numbers per env, in this order: ``distance`` to the next obstacle edge along the track (m,
negative once on / past it), the obstacle ``type`` one-hot over :data:`OBSTACLE_TYPES`, the obstacle ``depth``
(m along the track) and its signed ``critical_height`` (m; + climb, - jump-down, 0 none).

The learner side reads the same columns in ``st_rl.env.engaging_block`` (the field/climb mutex policies);
the two packages do not import each other, so ``tests/test_package_boundaries.py`` checks that both layouts agree.
"""

ENGAGING_BLOCK_SEGMENT = "engaging_block"
OBSTACLE_TYPES = ("none", "climb", "jump_down")
DISTANCE = 0
TYPE_START = 1
DEPTH = TYPE_START + len(OBSTACLE_TYPES)
CRITICAL_HEIGHT = DEPTH + 1
ENGAGING_BLOCK_SIZE = CRITICAL_HEIGHT + 1

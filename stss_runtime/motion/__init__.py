"""The motion (optical-flow) pass: the renderer's motion, how far to trust it, and better
motion where it is not to be trusted (``shared/PASSES.md``).

- :mod:`.decompose`: camera-induced and object-induced motion;
- :mod:`.credibility`: tier 0's credibility mask;
- :mod:`.classical`: tier 1 (OpenCV DIS);
- :mod:`.flow_network`: tier 2 (recurrent residual flow network with an iteration policy);
- :mod:`.estimator`: all tiers behind ``MotionEstimator``.
"""

from .credibility import CredibilityConfig, credibility, tile_mask
from .decompose import camera_motion, camera_motion_between, decompose
from .estimator import TIERS, BudgetController, MotionEstimator, MotionInputError, MotionResult, end_point_error

__all__ = ["TIERS", "BudgetController", "CredibilityConfig", "MotionEstimator", "MotionInputError", "MotionResult",
           "camera_motion", "camera_motion_between", "credibility", "decompose", "end_point_error",
           "tile_mask"]

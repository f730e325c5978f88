"""``p2c-doctor``: checks that the live filter can work here, measures it, and says what to fix."""

from p2c.doctor.checks import BackendSpeed, Finding, virtual_camera_steps
from p2c.doctor.estimate import LiveEstimate, estimate_live_fps

__all__ = ["BackendSpeed", "Finding", "LiveEstimate", "estimate_live_fps", "virtual_camera_steps"]

"""Running a handler's or verifier's policies on images: the engine and the DB context.

No HTTP here: the routes in ``luna_handlers.app`` parse requests, call these functions and
shape the answers. See README.md, "Processing".
"""

from luna_handlers.processing.checks import check_supported

__all__ = ["check_supported"]

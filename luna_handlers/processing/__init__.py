"""Running a handler's or verifier's policies on images: the engine and the DB context.

No HTTP here: the routes in ``luna_handlers.app`` parse requests, call these functions and
shape the answers. See README.md, "Processing".
"""

from luna_handlers.processing.checks import check_supported
from luna_handlers.processing.detection import ImageJob
from luna_handlers.processing.events import EventContext, run_handler
from luna_handlers.processing.faces import NewFace, create_face
from luna_handlers.processing.raw import raw_matches
from luna_handlers.processing.verification import candidates_of, verify_images

__all__ = ["EventContext", "ImageJob", "NewFace", "candidates_of", "check_supported",
           "create_face", "raw_matches", "run_handler", "verify_images"]

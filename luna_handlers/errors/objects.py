"""Objects that do not exist or cannot be loaded: handlers, verifiers, and the stores."""

from __future__ import annotations

from luna_handlers.errors.base import LunaError


class HandlerNotFound(LunaError, code=34000, status=404, desc="Object not found"):
    """No handler with this id (in this account)."""

    def __init__(self, handler_id: str) -> None:
        super().__init__(f"Handler with id '{handler_id}' not found")


class HandlerCorrupted(LunaError, code=34002, status=500, desc="Internal server error"):
    """The stored policies of a handler cannot be loaded."""

    def __init__(self, handler_id: str) -> None:
        super().__init__(f"Cannot load handler with id '{handler_id}'. Handler is corrupted")


class VerifierNotFound(LunaError, code=34004, status=404, desc="Object not found"):
    """No verifier with this id (in this account)."""

    def __init__(self, verifier_id: str) -> None:
        super().__init__(f"Verifier with id '{verifier_id}' not found")


def _named(what: str, ids: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{object_id}'" for object_id in ids)
    return f"{what} with id {quoted} not found" if len(ids) == 1 else (
        f"{what}s with ids {quoted} not found")


class FaceNotFound(LunaError, code=22001, status=404, desc="Object not found"):
    """No face with this id (or these ids) in this account."""

    def __init__(self, *face_ids: str) -> None:
        self.ids = face_ids
        super().__init__(_named("Face", face_ids))


class ListNotFound(LunaError, code=22002, status=404, desc="Object not found"):
    """No list with this id (or these ids) in this account."""

    def __init__(self, *list_ids: str) -> None:
        self.ids = list_ids
        super().__init__(_named("List", list_ids))


class SampleNotFound(LunaError, code=22003, status=404, desc="Object not found"):
    """No face sample with this id in this account (code: our choice)."""

    def __init__(self, sample_id: str) -> None:
        super().__init__(_named("Sample", (sample_id,)))


class EventNotFound(LunaError, code=23001, status=404, desc="Object not found"):
    """No event with this id (or these ids) in this account."""

    def __init__(self, *event_ids: str) -> None:
        self.ids = event_ids
        super().__init__(_named("Event", event_ids))



class VerifierCorrupted(LunaError, code=34013, status=500, desc="Internal server error"):
    """The stored policies of a verifier cannot be loaded (code: our choice, like 34002)."""

    def __init__(self, verifier_id: str) -> None:
        super().__init__(f"Cannot load verifier with id '{verifier_id}'. Verifier is corrupted")

"""The root of the hierarchy: :class:`LunaError` (code, HTTP status, description) and the
internal error."""

from __future__ import annotations

from typing import Any, ClassVar

ERROR_LINK = "https://docs.visionlabs.ai/info/luna/troubleshooting/errors-description/code-{code}"


class LunaError(Exception):
    """Root of every error that can reach a client: code, HTTP status and description."""

    code: ClassVar[int] = 1
    status: ClassVar[int] = 500
    desc: ClassVar[str] = "Internal server error"
    _registry: ClassVar[dict[int, type[LunaError]]] = {}

    def __init_subclass__(
        cls, *, code: int | None = None, status: int | None = None, desc: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if code is None:  # a grouping class: inherits code and status from its parent
            return
        if code in LunaError._registry:
            other = LunaError._registry[code].__name__
            raise TypeError(f"error code {code} of {cls.__name__} is already used by {other}")
        LunaError._registry[code] = cls
        cls.code = code
        if status is not None:
            cls.status = status
        if desc is not None:
            cls.desc = desc

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail if detail is not None else self.desc
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        """The LUNA error body: ``{"error_code", "desc", "detail", "link"}``."""
        return {
            "error_code": self.code,
            "desc": self.desc,
            "detail": self.detail,
            "link": ERROR_LINK.format(code=self.code),
        }

    @classmethod
    def registry(cls) -> dict[int, type[LunaError]]:
        """All registered error classes by code (for docs and tests)."""
        return dict(LunaError._registry)


class InternalError(LunaError, code=1, status=500, desc="Internal server error"):
    """An unexpected failure; details go to the log, never to the client."""

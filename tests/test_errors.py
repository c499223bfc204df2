"""The error hierarchy: unique codes, the LUNA body, and the README's table of codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from luna_handlers.errors import BadInputJson, HandlerNotFound, LunaError


def test_body_shape() -> None:
    body = HandlerNotFound("abc").body()
    assert body == {
        "error_code": 34000, "desc": "Object not found",
        "detail": "Handler with id 'abc' not found",
        "link": "https://docs.visionlabs.ai/info/luna/troubleshooting/errors-description/"
                "code-34000"}
    assert BadInputJson("policies.x", "bad").status == 400


def test_duplicate_codes_are_refused_at_class_creation() -> None:
    with pytest.raises(TypeError, match="error code 34000 of Twin is already used by "
                                        "HandlerNotFound"):
        type("Twin", (LunaError,), {}, code=34000, status=404, desc="twin")


def test_readme_lists_every_code_with_its_status() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    missing = [f"{code} {cls.status}" for code, cls in LunaError.registry().items()
               if f"| {code} | {cls.status} |" not in readme]
    assert missing == []

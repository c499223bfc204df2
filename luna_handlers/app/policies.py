"""Validation and normalisation of handler / verifier bodies and their policies.

The models live in :mod:`luna_handlers.app.policy_models`; this module turns request bodies
(already decoded JSON) into validated, normalised values and publishes the JSON Schemas of
the bodies for the OpenAPI document.

* Every validation failure is a :class:`~luna_handlers.errors.BadInputJson` (12022, HTTP 400)
  carrying the path of the FIRST error, dotted with list indices in brackets and rooted at the
  body: ``policies.match_policy[0].threshold``.
* Normalised policies have every default filled in and are JSON-ready
  (``model_dump(mode="json")``): this is what is stored and what is returned.
* The models are built once at import; a request costs one ``model_validate`` on the decoded
  object plus one ``model_dump``.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from luna_handlers import __version__
from luna_handlers.app.policy_models import (
    HandlerBody,
    HandlerPolicies,
    ValidatorBody,
    VerifierBody,
    VerifierPolicies,
)
from luna_handlers.app.policy_types import TIME_PATTERN, UUID_PATTERN
from luna_handlers.app.unknown_keys import first_unknown_key
from luna_handlers.db import RenderedPolicies
from luna_handlers.errors import BadInputJson

__all__ = [
    "DYNAMIC_WITH_POLICIES",
    "HANDLER_RENDERING",
    "STATIC_WITHOUT_POLICIES",
    "VERIFIER_RENDERING",
    "HandlerInput",
    "VerifierInput",
    "handler_body_schema",
    "normalise_handler_policies",
    "normalise_verifier_policies",
    "parse_handler_body",
    "parse_validator_body",
    "parse_verifier_body",
    "validator_body_schema",
    "verifier_body_schema",
]

DYNAMIC_WITH_POLICIES = "Dynamic handler can not have any policies."
STATIC_WITHOUT_POLICIES = "Non-dynamic handler must have policies."
NOT_AN_OBJECT = "must be an object"
EXTRA_KEY = "Extra inputs are not permitted"  # pydantic's own message for it

_M = TypeVar("_M", bound=BaseModel)

# pydantic messages that would leak class names or regexes, rewritten for API clients
_OBJECT_TYPES = frozenset({"model_type", "model_attributes_type", "dict_type"})
_PATTERN_MESSAGES = {
    UUID_PATTERN: "String should be a valid UUID",
    TIME_PATTERN: "String should be an ISO 8601 date-time with zone or 'now-<N><s|m|h|d|w|M|y>'",
}


def _made_with(model: type[BaseModel]) -> str:
    """What renderings of ``model`` are made with: its JSON Schema (fields, types, defaults)
    and the service version, hashed. A stored rendering is used while this is unchanged."""
    schema = orjson.dumps(model.model_json_schema(mode="serialization"),
                          option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(__version__.encode() + b"\0" + schema).hexdigest()[:32]


HANDLER_RENDERING = _made_with(HandlerPolicies)
VERIFIER_RENDERING = _made_with(VerifierPolicies)


@dataclass(frozen=True)
class HandlerInput:
    """A validated handler body; ``policies`` as sent (defaults are filled in on read), or
    None for a dynamic handler; ``rendered``: the policies as a read returns them."""

    description: str
    is_dynamic: bool
    policies: dict[str, Any] | None
    rendered: RenderedPolicies | None = field(default=None, compare=False)


@dataclass(frozen=True)
class VerifierInput:
    """A validated verifier body; ``policies`` as sent (defaults are filled in on read);
    ``rendered``: the policies as a read returns them."""

    description: str
    policies: dict[str, Any]
    rendered: RenderedPolicies | None = field(default=None, compare=False)


def _format_path(loc: tuple[int | str, ...], root: str = "") -> str:
    """``("policies", "match_policy", 0, "limit")`` -> ``policies.match_policy[0].limit``."""
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else part
    return path


def _first_error(exc: ValidationError, root: str = "") -> BadInputJson:
    error = exc.errors(include_url=False, include_input=False)[0]
    message = error["msg"]
    if error["type"] in _OBJECT_TYPES:
        message = "Input should be an object"
    elif error["type"] == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern")
        message = _PATTERN_MESSAGES.get(str(pattern), message)
    return BadInputJson(_format_path(error["loc"], root), message)


def _validate(model: type[_M], data: object, root: str = "") -> _M:
    """Validate a decoded JSON object against ``model``; the first error as BadInputJson."""
    if not isinstance(data, dict):
        raise BadInputJson(root, NOT_AN_OBJECT)
    # Before pydantic, which would build an error for every unknown key (see unknown_keys).
    unknown = first_unknown_key(model, data, root)
    if unknown is not None:
        raise BadInputJson(unknown, EXTRA_KEY)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, root) from None


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=False)


def parse_handler_body(body: object) -> HandlerInput:
    """Validate a POST/PUT /1/handlers body.

    A dynamic handler must not have policies (``null`` is allowed); a static one must have them
    (``{}`` is enough: every policy has defaults). Field errors are reported before these rules.
    """
    parsed = _validate(HandlerBody, body)
    _check_description(parsed.description)
    if parsed.is_dynamic:
        if parsed.policies is not None:
            raise BadInputJson("policies", DYNAMIC_WITH_POLICIES)
        return HandlerInput(parsed.description, True, None)
    if parsed.policies is None:
        raise BadInputJson("policies", STATIC_WITHOUT_POLICIES)
    return HandlerInput(parsed.description, False, _as_sent(body),
                        _rendered(parsed.policies, HANDLER_RENDERING))


def parse_verifier_body(body: object) -> VerifierInput:
    """Validate a POST/PUT /1/verifiers body; missing ``policies`` means all defaults."""
    parsed = _validate(VerifierBody, body)
    _check_description(parsed.description)
    return VerifierInput(parsed.description, _as_sent(body) or {},
                         _rendered(parsed.policies, VERIFIER_RENDERING))


def _rendered(policies: BaseModel, made_with: str) -> RenderedPolicies:
    # The model validated from the body is what a read validates from the stored policies:
    # its dump is the read's rendering, without validating again.
    return RenderedPolicies(orjson.dumps(_dump(policies)).decode(), made_with)


def _check_description(description: str) -> None:
    # PostgreSQL text cannot store NUL; refused here so that no body parser lets it through.
    if "\x00" in description:
        raise BadInputJson("description", "String should not contain NUL characters")


def _as_sent(body: object) -> dict[str, Any] | None:
    # Policies are stored as sent (validated) and defaults are filled in on read, as LUNA
    # does: a handler then follows the defaults of the running version. The rendering stored
    # beside them (``_rendered``) is that read made once, used while its version runs.
    assert isinstance(body, dict)  # _validate checked it
    policies = body.get("policies")
    return policies if isinstance(policies, dict) else None


def parse_validator_body(body: object) -> dict[str, Any]:
    """Validate a POST /1/handlers/validator body ``{"policies": {...}}``: normalised policies."""
    return _dump(_validate(ValidatorBody, body).policies)


def _normalise(model: type[BaseModel], stored: dict[str, Any]) -> dict[str, Any]:
    try:
        return _dump(_validate(model, stored, "policies"))
    except BadInputJson as exc:
        raise ValueError(f"stored policies are invalid at '{exc.path}': {exc.message}") from None


def normalise_handler_policies(stored: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults into handler policies read back from the database.

    They were validated on write, so a failure means a corrupted row: it raises ``ValueError``
    (never a client error), which the caller turns into ``HandlerCorrupted``.
    """
    return _normalise(HandlerPolicies, stored)


def normalise_verifier_policies(stored: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults into verifier policies read back from the database (``ValueError`` if bad)."""
    return _normalise(VerifierPolicies, stored)


def _render_stored(text: str, normalise: Any) -> str | None:
    try:
        return orjson.dumps(normalise(orjson.loads(text))).decode()
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None  # corrupted: reads keep answering it as corrupted


def render_stored_handler(text: str) -> str | None:
    """Stored handler policies (JSON text) as a read renders them; ``None`` if corrupted."""
    return _render_stored(text, normalise_handler_policies)


def render_stored_verifier(text: str) -> str | None:
    """Stored verifier policies (JSON text) as a read renders them; ``None`` if corrupted."""
    return _render_stored(text, normalise_verifier_policies)


# --- JSON Schemas ------------------------------------------------------------------------------


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Resolve every ``#/$defs/...`` reference in place and drop the generated ``title`` keys."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    ref = node.get("$ref")
    if isinstance(ref, str):
        out.update(_inline(defs[ref.rsplit("/", 1)[-1]], defs))
    for key, value in node.items():
        if key in {"$ref", "$defs", "title"}:
            continue
        if key == "properties":
            out[key] = {name: _inline(sub, defs) for name, sub in value.items()}
        else:
            out[key] = _inline(value, defs)
    return out


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(mode="validation")
    schema: dict[str, Any] = _inline(raw, raw.get("$defs", {}))
    return schema


def _handler_schema() -> dict[str, Any]:
    schema = _schema_of(HandlerBody)
    # the dynamic/static rule of parse_handler_body, in JSON Schema 2020-12 (OpenAPI 3.1)
    schema["if"] = {"properties": {"is_dynamic": {"const": True}}, "required": ["is_dynamic"]}
    schema["then"] = {"properties": {"policies": {"type": "null"}}}
    schema["else"] = {"properties": {"policies": {"type": "object"}}, "required": ["policies"]}
    return schema


_HANDLER_SCHEMA = _handler_schema()
_VERIFIER_SCHEMA = _schema_of(VerifierBody)
_VALIDATOR_SCHEMA = _schema_of(ValidatorBody)


def handler_body_schema() -> dict[str, Any]:
    """JSON Schema (2020-12, no ``$ref``) of the POST/PUT /1/handlers body (a fresh copy)."""
    return copy.deepcopy(_HANDLER_SCHEMA)


def verifier_body_schema() -> dict[str, Any]:
    """JSON Schema (2020-12, no ``$ref``) of the POST/PUT /1/verifiers body (a fresh copy)."""
    return copy.deepcopy(_VERIFIER_SCHEMA)


def validator_body_schema() -> dict[str, Any]:
    """JSON Schema (2020-12, no ``$ref``) of the POST /1/handlers/validator body."""
    return copy.deepcopy(_VALIDATOR_SCHEMA)

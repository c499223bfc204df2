"""POST /1/verifiers/{verifier_id}/verifications and /raw: run a verifier."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from luna_handlers.app import deps
from luna_handlers.app.event_params import VERIFICATION_PARAMS, query
from luna_handlers.app.image_body import read_images
from luna_handlers.app.policies import normalise_verifier_policies
from luna_handlers.app.routes_events import image_jobs
from luna_handlers.app.routes_verifiers import PREFIX
from luna_handlers.app.serialize import ORJSONResponse
from luna_handlers.errors import RequiredParamsNotFound, VerifierCorrupted, VerifierNotFound
from luna_handlers.processing import candidates_of, raw_matches, verify_images


async def _policies(request: Request, account: str) -> dict[str, Any]:
    verifier_id = deps.path_id(request, "verifier_id", VerifierNotFound)
    record = await deps.db(request).getVerifier(verifier_id, account)
    if record is None:
        raise VerifierNotFound(verifier_id)
    try:
        return normalise_verifier_policies(record.policies)
    except ValueError:
        raise VerifierCorrupted(verifier_id) from None


async def verify(request: Request) -> Response:
    """POST /1/verifiers/{verifier_id}/verifications?face_ids=&event_ids=: 200 ``images``."""
    account = deps.required_account(request)
    values = query(request, VERIFICATION_PARAMS)
    face_ids, event_ids = values["face_ids"] or [], values["event_ids"] or []
    if not face_ids and not event_ids:
        raise RequiredParamsNotFound("face_ids or event_ids")
    policies = await _policies(request, account)
    candidates = await candidates_of(deps.db(request), account, face_ids, event_ids)
    body = await read_images(request)
    images = await verify_images(deps.engine(request), deps.db(request), policies,
                                 image_jobs(body, values), filenames=body.filenames,
                                 account_id=account, candidates=candidates)
    return ORJSONResponse({"images": images})


async def verify_raw(request: Request) -> Response:
    """POST /1/verifiers/{verifier_id}/raw: 200 ``matches`` of references x candidates."""
    account = deps.required_account(request)
    policies = await _policies(request, account)
    body = await deps.read_json(request)
    matches = await raw_matches(deps.db(request), account, body,
                                policies["verification_threshold"])
    return ORJSONResponse({"matches": matches})


#: path -> method -> endpoint.
ROUTES: dict[str, dict[str, deps.Endpoint]] = {
    f"{PREFIX}/{{verifier_id}}/verifications": {"POST": verify},
    f"{PREFIX}/{{verifier_id}}/raw": {"POST": verify_raw},
}

"""Routes of /1/verifiers: parse the request, call the DB context, shape the answer."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from luna_handlers.app import deps
from luna_handlers.app.list_items import page
from luna_handlers.app.params import (
    VERIFIER_COUNT_PARAMS,
    VERIFIER_LIST_PARAMS,
    list_filters,
    parse_query,
)
from luna_handlers.app.policies import parse_verifier_body
from luna_handlers.app.serialize import ORJSONResponse, verifier_json
from luna_handlers.errors import VerifierNotFound
from luna_handlers.processing import check_supported

PREFIX = "/1/verifiers"


def _verifier_id(request: Request) -> str:
    return deps.path_id(request, "verifier_id", VerifierNotFound)


async def create_verifier(request: Request) -> Response:
    """POST /1/verifiers: 201 with the new id and its URL."""
    account = deps.required_account(request)
    body = parse_verifier_body(await deps.read_json(request))
    check_supported(body.policies)
    verifier_id = await deps.db(request).createVerifier(body.policies, account, body.description,
                                                        rendered=body.rendered)
    return deps.created(PREFIX, "verifier_id", verifier_id)


async def list_verifiers(request: Request) -> Response:
    """GET /1/verifiers: one page, newest first."""
    values = parse_query(deps.query_items(request), VERIFIER_LIST_PARAMS)
    filters = list_filters(values, deps.account(request), "verifier_ids")
    records = [] if filters is None else await deps.db(request).getVerifiers(
        filters, values["page"], values["page_size"])
    return page("verifiers", records, verifier_json)


async def count_verifiers(request: Request) -> Response:
    """GET /1/verifiers/count: how many verifiers match the filters."""
    values = parse_query(deps.query_items(request), VERIFIER_COUNT_PARAMS)
    filters = list_filters(values, deps.account(request), "verifier_ids")
    count = 0 if filters is None else await deps.db(request).getVerifierCount(filters)
    return ORJSONResponse({"verifiers_count": count})


async def get_verifier(request: Request) -> Response:
    """GET /1/verifiers/{verifier_id}."""
    account = deps.account(request)
    verifier_id = _verifier_id(request)
    record = await deps.db(request).getVerifier(verifier_id, account)
    if record is None:
        raise VerifierNotFound(verifier_id)
    return ORJSONResponse(verifier_json(record))


async def head_verifier(request: Request) -> Response:
    """HEAD /1/verifiers/{verifier_id}: 200 when it exists (in this account), else 404."""
    account = deps.account(request)
    verifier_id = _verifier_id(request)
    if not await deps.db(request).checkVerifier(verifier_id, account):
        raise VerifierNotFound(verifier_id)
    return Response(status_code=200)


async def put_verifier(request: Request) -> Response:
    """PUT /1/verifiers/{verifier_id}: replace description and policies; 200 with the version."""
    account = deps.required_account(request)
    verifier_id = _verifier_id(request)
    body = parse_verifier_body(await deps.read_json(request))
    check_supported(body.policies)
    version = await deps.db(request).putVerifier(verifier_id, body.policies, body.description,
                                                 account, rendered=body.rendered)
    if version is None:
        raise VerifierNotFound(verifier_id)
    return ORJSONResponse({"version": version})


async def delete_verifier(request: Request) -> Response:
    """DELETE /1/verifiers/{verifier_id}: 204."""
    account = deps.required_account(request)
    verifier_id = _verifier_id(request)
    if not await deps.db(request).deleteVerifier(verifier_id, account):
        raise VerifierNotFound(verifier_id)
    return deps.no_content()


#: path -> method -> endpoint; the application builds its routes from this table.
ROUTES: dict[str, dict[str, deps.Endpoint]] = {
    PREFIX: {"GET": list_verifiers, "POST": create_verifier},
    f"{PREFIX}/count": {"GET": count_verifiers},
    f"{PREFIX}/{{verifier_id}}": {"GET": get_verifier, "HEAD": head_verifier,
                                  "PUT": put_verifier, "DELETE": delete_verifier},
}

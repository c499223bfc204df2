"""The verifier store: the statements and DB-context methods of verifiers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from luna_handlers.db.prepared import Prepared, Row
from luna_handlers.db.records import ListFilters, RenderedPolicies, VerifierRecord
from luna_handlers.db.schema.models import Verifier
from luna_handlers.db.schema.sqltypes import utc_now
from luna_handlers.db.stores.common import (
    RENDERED_COLUMNS,
    SCOPES,
    Store,
    by_id,
    delete_statement,
    dump,
    exists_statement,
    get_statement,
    insert_statement,
    match,
    new_id,
    rendered_binds,
    rendered_values,
)

VERIFIER: sa.Table = Verifier.__table__  # type: ignore[assignment]  # declarative gives a Table


def _put(scoped: bool) -> Prepared:
    return Prepared(lambda _dialect: (
        sa.update(VERIFIER).where(*match(VERIFIER, scoped))
        .values(description=sa.bindparam("v_description"), policies=sa.bindparam("v_policies"),
                version=VERIFIER.c.version + 1, last_update_time=utc_now(),
                **rendered_binds())
        .returning(VERIFIER.c.version)))


GET_VERIFIER = {scoped: get_statement(VERIFIER, scoped) for scoped in SCOPES}
EXISTS_VERIFIER = {scoped: exists_statement(VERIFIER, scoped) for scoped in SCOPES}
DELETE_VERIFIER = {scoped: delete_statement(VERIFIER, scoped) for scoped in SCOPES}
PUT_VERIFIER = {scoped: _put(scoped) for scoped in SCOPES}
INSERT_VERIFIER = insert_statement(VERIFIER, ("verifier_id", "account_id", "description",
                                              "policies", "version", *RENDERED_COLUMNS))


def _verifier(row: Row) -> VerifierRecord:
    return VerifierRecord(
        verifier_id=row["verifier_id"], account_id=row["account_id"],
        # Oracle stores '' as NULL.
        description=row["description"] or "", policies_json=row["policies"] or "{}",
        version=row["version"], create_time=row["create_time"],
        last_update_time=row["last_update_time"],
        rendered_policies=row["rendered_policies"], rendered_with=row["rendered_with"],
    )


class VerifierStore(Store):
    """Reads and writes of verifiers."""

    async def createVerifier(self, policies: dict[str, Any], accountId: str,
                             description: str = "",
                             *, rendered: RenderedPolicies | None = None) -> str:
        """Create a verifier at version 1 and return its id (``rendered``: the policies as
        a read returns them, stored beside them)."""
        verifier_id = new_id()
        await self._write(INSERT_VERIFIER, {
            "v_verifier_id": verifier_id, "v_account_id": accountId,
            "v_description": description, "v_policies": dump(policies), "v_version": 1,
            **rendered_values(rendered)})
        return verifier_id

    async def getVerifier(self, verifierId: str, accountId: str | None = None
                          ) -> VerifierRecord | None:
        """The verifier, or None when it does not exist (in this account)."""
        row = await self._one(GET_VERIFIER, verifierId, accountId)
        return None if row is None else _verifier(row)

    async def getVerifiers(self, filters: ListFilters, page: int = 1,
                           pageSize: int = 10) -> list[VerifierRecord]:
        """One page of verifiers, newest first."""
        return [_verifier(row) for row in await self._list(VERIFIER, filters, page, pageSize)]

    async def getVerifierCount(self, filters: ListFilters) -> int:
        """How many verifiers match the filters."""
        return await self._count(VERIFIER, filters)

    async def checkVerifier(self, verifierId: str, accountId: str | None = None) -> bool:
        """True if the verifier exists (in this account)."""
        return await self._exists(EXISTS_VERIFIER, verifierId, accountId)

    async def putVerifier(self, verifierId: str, policies: dict[str, Any], description: str,
                          accountId: str | None,
                          *, rendered: RenderedPolicies | None = None) -> int | None:
        """Replace a verifier (its policies' ``rendered`` form too) and return its new
        version; None when it does not exist.

        ``version = version + 1`` in one UPDATE: the row lock serialises concurrent
        replaces, so none is lost.
        """
        params = by_id(verifierId, accountId) | {
            "v_description": description, "v_policies": dump(policies),
            **rendered_values(rendered)}
        rows = await self._write(PUT_VERIFIER[accountId is not None], params)
        return int(rows[0]["version"]) if rows else None

    async def deleteVerifier(self, verifierId: str, accountId: str | None = None) -> bool:
        """Delete the verifier; True if it existed."""
        return await self._delete(DELETE_VERIFIER, verifierId, accountId)

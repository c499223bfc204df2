"""The offline Oracle DDL as a SQL*Plus (or SQLcl) script, from Alembic's ``--sql`` output."""

from __future__ import annotations

import re

from luna_handlers.db.schema.migrate import head_revision

ORACLE_SCRIPT_HEADER = """\
-- luna-handlers database schema for Oracle Database 19c or newer, up to revision {head}.
-- Made by 'luna-handlers db sql --db-type oracle'. Run it as is, as the schema owner, in
-- SQL*Plus or SQLcl: sqlplus user/password@//host:1521/service @luna_handlers.sql
-- Every SQL statement ends with ';' (a PL/SQL block would end with '/' on its own line).
-- Oracle commits each DDL statement by itself: the script stops at the first error, and
-- alembic_version then names the last revision completed; drop what the failed revision
-- created, then run the rest from its "-- Running upgrade" line.
WHENEVER SQLERROR EXIT FAILURE ROLLBACK"""
_PLSQL_BLOCK = re.compile(
    r"(DECLARE|BEGIN|CREATE\s+(OR\s+REPLACE\s+)?(PROCEDURE|FUNCTION|PACKAGE|TRIGGER|TYPE))\b",
    re.IGNORECASE)
# Alembic renders its version INSERT with the RETURNING of the primary key that SQLAlchemy
# adds on Oracle; offline, that is a bind variable SQL*Plus does not have.
_VERSION_INSERT = re.compile(
    r"(INSERT INTO alembic_version \(version_num\) VALUES \('[^']*'\)) RETURNING .*")
_VERSION_DML = re.compile(r"(INSERT INTO|UPDATE|DELETE FROM) alembic_version\b")
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_BIND_VARIABLE = re.compile(r"(?<![\w:]):[A-Za-z_]\w*")


def sqlplus_script(alembic_sql: str) -> str:
    """Alembic's offline Oracle output ('/' after each statement) as a SQL*Plus script.

    One convention throughout: a SQL statement ends with ';', a PL/SQL block with a '/'
    line; each version-table change is followed by COMMIT. Raises ``ValueError`` for what
    the script could not run as is (a bind variable, a blank line inside a statement).
    """
    parts = [ORACLE_SCRIPT_HEADER.format(head=head_revision())]
    for chunk in re.split(r"(?m)^/$", alembic_sql):
        lines = chunk.strip("\n").split("\n")
        comments = 0
        while comments < len(lines) and (lines[comments].startswith("--")
                                         or not lines[comments].strip()):
            comments += 1
        parts += [line for line in lines[:comments] if line.strip()]
        statement = "\n".join(lines[comments:]).strip()
        if statement:
            parts += _sqlplus_statement(statement)
    return "\n\n".join(parts) + "\n"


def _sqlplus_statement(statement: str) -> list[str]:
    statement = _VERSION_INSERT.sub(r"\1", statement)
    if _BIND_VARIABLE.search(_STRING_LITERAL.sub("''", statement)):
        raise ValueError(f"offline Oracle SQL with a bind variable: {statement[:200]}")
    if re.search(r"\n\s*\n", statement):
        # SQL*Plus ends a statement at a blank line (SQLBLANKLINES is OFF by default).
        raise ValueError(f"offline Oracle SQL with a blank line: {statement[:200]}")
    if _PLSQL_BLOCK.match(statement):
        return [f"{statement}\n/"]
    return [f"{statement};", *(["COMMIT;"] if _VERSION_DML.match(statement) else [])]

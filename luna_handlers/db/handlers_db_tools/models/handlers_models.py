"""Where the LUNA documentation places the table models; they live in
:mod:`luna_handlers.db.schema.models`."""

from __future__ import annotations

from luna_handlers.db.schema.models import Base, Handler, Verifier

__all__ = ["Base", "Handler", "Verifier"]

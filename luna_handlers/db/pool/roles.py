"""Host roles and which of them may carry the pool, per ``target_session_attrs``.

:class:`HostRole` is what a probe learns; :data:`ROLE_CHECKS` holds one predicate per target
(libpq's semantics, PG14+), and :data:`PASSES` the passes of the host choice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from luna_handlers.db.hosts import TargetSessionAttrs


@dataclass(frozen=True)
class HostRole:
    """What a probe learnt about a host: hot standby or not, read-only sessions or not."""

    in_recovery: bool
    read_only: bool  # new sessions are read-only: a standby, or default_transaction_read_only

    @property
    def name(self) -> str:
        """``primary`` or ``standby`` (a read-only primary is still a primary)."""
        return "standby" if self.in_recovery else "primary"


RoleCheck = Callable[[HostRole], bool]


def _any(_role: HostRole) -> bool:
    return True


def _standby(role: HostRole) -> bool:
    return role.in_recovery


# Whether a host of this role may carry the pool, per target_session_attrs. prefer-standby
# accepts any host; the standby preference is the extra first pass of PASSES.
ROLE_CHECKS: Mapping[TargetSessionAttrs, RoleCheck] = MappingProxyType({
    TargetSessionAttrs.ANY: _any,
    TargetSessionAttrs.READ_WRITE: lambda role: not role.read_only,
    TargetSessionAttrs.READ_ONLY: lambda role: role.read_only,
    TargetSessionAttrs.PRIMARY: lambda role: not role.in_recovery,
    TargetSessionAttrs.STANDBY: _standby,
    TargetSessionAttrs.PREFER_STANDBY: _any,
})
# The passes of the host choice, best first (libpq: prefer-standby tries standbys, then any).
PASSES: Mapping[TargetSessionAttrs, tuple[RoleCheck, ...]] = MappingProxyType({
    target: ((_standby, _any) if target is TargetSessionAttrs.PREFER_STANDBY else (check,))
    for target, check in ROLE_CHECKS.items()
})
# Targets whose pool must accept writes: a read-only error (25006) there means "wrong host".
WRITABLE_TARGETS = frozenset({TargetSessionAttrs.READ_WRITE})


def acceptable(role: HostRole, target: TargetSessionAttrs) -> bool:
    """True when a host of ``role`` may keep carrying a pool for ``target``."""
    return ROLE_CHECKS[target](role)



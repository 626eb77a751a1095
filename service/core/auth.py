"""Bearer tokens and roles.

A token is a random secret (``secrets.token_urlsafe``) shown once; only its
SHA-256 is stored, so a copy of the database does not let anyone sign in.

Roles: ``technician`` (bound to one node; submits and reads that node's
records), ``manager`` (reads all, publishes standards), ``auditor`` (reads
all), ``admin`` (reads all; manages nodes and tokens).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from qc.bounds import text_problem
from qc.errors import AuthenticationFailed, InvalidInput, NotFound, PermissionDenied, Problem
from service.storage.orm import AccessToken, Node
from service.storage.repository import add_audit_event

__all__ = [
    "TOKEN_PREFIX",
    "Principal",
    "Role",
    "authenticate",
    "create_token",
    "hash_token",
    "principal_of",
    "require_role",
    "revoke_token",
]

TOKEN_PREFIX = "kip_"  # makes a leaked token recognisable to secret scanners


class Role(StrEnum):
    TECHNICIAN = "technician"
    MANAGER = "manager"
    AUDITOR = "auditor"
    ADMIN = "admin"


READ_ALL = frozenset({Role.MANAGER, Role.AUDITOR, Role.ADMIN})


@dataclass(frozen=True)
class Principal:
    """Who is calling: resolved from a token (or the CLI, for in-process work)."""

    role: Role
    name: str
    node_id: int | None = None
    node: str | None = None
    token_id: int | None = None

    @property
    def reads_all(self) -> bool:
        return self.role in READ_ALL

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"token:{self.token_id} {self.name}" if self.token_id is not None else self.name

    def may_see_node(self, node_id: int) -> bool:
        return self.reads_all or (self.node_id is not None and self.node_id == node_id)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    session: Session, *, role: Role | str, name: str, actor: str, node: str | None = None, now: dt.datetime
) -> tuple[str, AccessToken]:
    """Create a token; return the secret (show it once) and the stored row (hash only).

    ``actor`` is the person creating it; the audit event names them and the token's holder, role
    and node (never the secret or its hash).
    """
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput(
            f"unknown role {role!r}", [Problem("role", f"one of: {', '.join(r.value for r in Role)}")]
        ) from None
    if name and (reason := text_problem(name)):
        raise InvalidInput("invalid token name", [Problem("name", reason)])
    node_row: Node | None = None
    if role is Role.TECHNICIAN:
        if not node:
            raise InvalidInput("a technician token is bound to one node", [Problem("node", "required for technician")])
    if node:
        node_row = session.scalars(select(Node).where(Node.name == node)).one_or_none()
        if node_row is None:
            raise NotFound(f"no node named {node!r}; create it first with `qc nodes add {node}`")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = AccessToken(
        token_sha256=hash_token(secret),
        role=role.value,
        name=name or f"{role.value}{'@' + node if node else ''}",
        node_id=node_row.id if node_row else None,
        created_at=now,
    )
    session.add(row)
    session.flush()
    _audit_token(session, row, action="token.create", actor=actor, node=node_row.name if node_row else None, now=now)
    return secret, row


def revoke_token(session: Session, *, token_id: int, actor: str, now: dt.datetime) -> AccessToken:
    """Revoke a token at ``now`` (it stops working at once); the audit event names ``actor``.

    Revoking a revoked token changes nothing and writes no second event.
    """
    row = session.get(AccessToken, token_id)
    if row is None:
        raise NotFound(f"no token {token_id}; see `qc tokens list`")
    if row.revoked_at is None:
        row.revoked_at = now
        _audit_token(session, row, action="token.revoke", actor=actor, node=row.node.name if row.node else None,
                     now=now)
    return row


def _audit_token(session: Session, row: AccessToken, *, action: str, actor: str, node: str | None,
                 now: dt.datetime) -> None:
    add_audit_event(session, actor=actor, action=action, subject_type="token", subject_id=str(row.id),
                    node_id=row.node_id, detail={"holder": row.name, "role": row.role, "node": node}, now=now)


def authenticate(session: Session, authorization: str | None) -> Principal:
    """Resolve an ``Authorization: Bearer <token>`` header to a principal."""
    if not authorization:
        raise AuthenticationFailed("missing token: send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed("malformed Authorization header: expected 'Bearer <token>'")
    row = session.scalars(select(AccessToken).where(AccessToken.token_sha256 == hash_token(token))).one_or_none()
    if row is None or row.revoked_at is not None:
        raise AuthenticationFailed("unknown or revoked token; ask an admin for a new one (`qc tokens create`)")
    return principal_of(row)


def principal_of(row: AccessToken) -> Principal:
    """Who a token stands for (the one mapping; dashboard sessions use it too)."""
    return Principal(role=Role(row.role), name=row.name, node_id=row.node_id,
                     node=row.node.name if row.node else None, token_id=row.id)


def require_role(principal: Principal, *roles: Role, action: str) -> None:
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise PermissionDenied(f"a {principal.role.value} token may not {action} (allowed: {allowed})")

"""Dashboard sign-ins: a random session id in the browser's cookie, only its SHA-256 in ``dashboard_sessions``.

A session stands for one bearer token (the one pasted into ``/dashboard/login``) and ends at the first of:

- sign-out (``end_session``);
- the token's revocation: checked at every request, so ``qc tokens revoke`` signs that token out of every
  browser at once;
- ``Settings.dashboard_idle_minutes`` without a request (default 30);
- ``Settings.dashboard_session_hours`` after sign-in, however busy (default 12).

Every time is the caller's ``now`` (the service clock, frozen in tests), never the wall clock.

Each session has a CSRF token for its forms, derived from the session id (an HMAC keyed by it): one per
session, no column to store, and a page that shows it does not show the id, which stays in the HttpOnly
cookie.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from service.core.auth import Principal, principal_of
from service.core.context import ServiceContext
from service.settings import Settings
from service.storage.orm import DashboardSession
from service.storage.repository import add_audit_event

__all__ = ["SESSION_PREFIX", "SessionPolicy", "SignedIn", "csrf_matches", "end_session", "resume_session",
           "start_session"]

SESSION_PREFIX = "kds_"  # a session id, recognisable as such (not a bearer token, "kip_")
# last_seen_at is written at most once a minute, so reading pages does not take the write lock each time;
# idle expiry is therefore exact to within this step.
SEEN_EVERY = dt.timedelta(minutes=1)
_CSRF_LABEL = b"kipimo.dashboard.csrf/1"


@dataclass(frozen=True)
class SessionPolicy:
    """How long a sign-in lasts: ``idle`` since the last request, ``lifetime`` since sign-in."""

    idle: dt.timedelta = dt.timedelta(minutes=30)
    lifetime: dt.timedelta = dt.timedelta(hours=12)

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        return cls(idle=dt.timedelta(minutes=settings.dashboard_idle_minutes),
                   lifetime=dt.timedelta(hours=settings.dashboard_session_hours))


@dataclass(frozen=True)
class SignedIn:
    """A live session: who it stands for, the CSRF token its forms carry, when it ends at the latest."""

    principal: Principal
    csrf: str
    session_id: int
    expires_at: dt.datetime


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _csrf_of(secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), _CSRF_LABEL, hashlib.sha256).hexdigest()


def csrf_matches(signed_in: SignedIn, submitted: str) -> bool:
    """Whether a form's CSRF field is this session's token (constant-time comparison)."""
    return hmac.compare_digest(signed_in.csrf.encode("ascii"), submitted.encode("utf-8"))


def start_session(ctx: ServiceContext, principal: Principal, *, now: dt.datetime) -> tuple[str, SignedIn]:
    """Open a session for ``principal`` (a token's holder); return the id for the cookie (shown only here)
    and the session. The audit event names the token, never the id or its hash."""
    if principal.token_id is None:
        raise ValueError("a dashboard session stands for a token; this principal has none")
    policy = SessionPolicy.from_settings(ctx.settings)
    secret = SESSION_PREFIX + secrets.token_urlsafe(32)
    expires = now + policy.lifetime
    with ctx.db.write_session() as session:
        row = DashboardSession(session_sha256=_sha256(secret), token_id=principal.token_id, created_at=now,
                               last_seen_at=now, expires_at=expires)
        session.add(row)
        session.flush()
        add_audit_event(session, actor=principal.actor, role=principal.role.value, node_id=principal.node_id,
                        action="dashboard.login", subject_type="dashboard_session", subject_id=str(row.id),
                        detail={"token_id": principal.token_id, "expires_at": expires.isoformat()}, now=now)
        session_id = row.id
    return secret, SignedIn(principal, _csrf_of(secret), session_id, expires)


def resume_session(ctx: ServiceContext, secret: str, *, now: dt.datetime) -> SignedIn | None:
    """The live session behind a cookie's id, or None (unknown, ended, idle, expired, token revoked).

    A session found idle, expired or revoked is ended here, with that reason."""
    policy = SessionPolicy.from_settings(ctx.settings)
    with ctx.db.session() as session:
        row = session.scalars(select(DashboardSession)
                              .where(DashboardSession.session_sha256 == _sha256(secret))).one_or_none()
        if row is None or row.ended_at is not None:
            return None
        token = row.token
        why = ("revoked" if token.revoked_at is not None else "expired" if now >= row.expires_at
               else "idle" if now - row.last_seen_at >= policy.idle else None)
        principal = principal_of(token)
        signed_in = SignedIn(principal, _csrf_of(secret), row.id, row.expires_at)
        stale = now - row.last_seen_at >= SEEN_EVERY
    if why is not None:
        with ctx.db.write_session() as session:
            _end(session, signed_in.session_id, reason=why, now=now)
        return None
    if stale:
        with ctx.db.write_session() as session:
            session.execute(update(DashboardSession)
                            .where(DashboardSession.id == signed_in.session_id, DashboardSession.ended_at.is_(None))
                            .values(last_seen_at=now))
    return signed_in


def end_session(ctx: ServiceContext, signed_in: SignedIn, *, now: dt.datetime) -> None:
    """Sign out: the session ends now (its cookie no longer signs anyone in); the audit event names who."""
    principal = signed_in.principal
    with ctx.db.write_session() as session:
        if _end(session, signed_in.session_id, reason="logout", now=now):
            add_audit_event(session, actor=principal.actor, role=principal.role.value, node_id=principal.node_id,
                            action="dashboard.logout", subject_type="dashboard_session",
                            subject_id=str(signed_in.session_id), detail={"token_id": principal.token_id}, now=now)


def _end(session: Session, session_id: int, *, reason: str, now: dt.datetime) -> bool:
    """End a session that has not ended yet; whether this call ended it."""
    done = session.execute(update(DashboardSession)
                           .where(DashboardSession.id == session_id, DashboardSession.ended_at.is_(None))
                           .values(ended_at=now, end_reason=reason))
    return cast(CursorResult[Any], done).rowcount == 1

"""The quality manager's dashboard: server-rendered HTML pages with inline SVG charts (no script).

Pages: ``/dashboard`` (the network at a glance), ``/dashboard/products/{slug}``,
``/dashboard/nodes/{name}``, ``/dashboard/lots/{id}``, ``/dashboard/alerts``, ``/dashboard/reviews`` (records sent to
review, with their photos and overlays; managers and admins settle them there).

Sign-in: managers, auditors and admins paste their bearer token into ``/dashboard/login``. That opens a
server-side session (``service/core/dashboard_sessions.py``: 30 minutes idle, 12 h at most, ended by
sign-out or by revoking the token); the cookie holds only the session's random id (HttpOnly,
SameSite=Strict, Path=/dashboard, and Secure when the request came over https, which behind a TLS proxy
needs ``qc serve --proxy-headers``), never the token. Scripts may send ``Authorization: Bearer`` instead.

Cross-site request forgery: SameSite alone does not stop a page on another port of the same host (that is
the same *site*), so every POST from a signed-in browser carries the session's CSRF token (hidden ``csrf``
field, compared in constant time) and an ``Origin`` (or, without one, a ``Referer``) equal to this server's
own origin; the sign-in form checks the origin too (login CSRF). A refusal is a 403 page saying why. A POST
signed by the Authorization header needs neither: no browser adds that header on its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from qc.errors import AuthenticationFailed, KipimoError, NotFound, PermissionDenied, TooManyRequests
from service.core import alerts as alerting
from service.core import analytics as q
from service.core import insights
from service.core import reviews as reviewing
from service.core.auth import Principal
from service.core.dashboard_sessions import SignedIn, csrf_matches, end_session, resume_session, start_session
from service.http.deps import READERS, Allowed, SessionDep, acknowledge_alerts, authenticate_counted, decide_reviews
from service.http.routes.analytics import FiltersDep, acknowledge_alert, get_analytics
from service.storage import repository as repo
from service.storage.orm import Node, Product
from service.web.dashboard import pages

__all__ = ["COOKIE", "router"]

router = APIRouter(prefix="/dashboard", include_in_schema=False)
COOKIE = "kipimo_dashboard"
CSP = ("default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
# same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" even on a form posted to its
# own origin, and the origin check below would refuse every form. Other sites still get no Referer.
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
           "Cache-Control": "no-store"}


# The pages catch refusals themselves (to show a page, not JSON), so they apply the gates of
# service/http/deps.py by calling them rather than as dependencies.
open_dashboard = Allowed(*READERS, action="open the dashboard")


class _SignIn(Exception):
    """No usable credentials: send the browser to the sign-in form."""


class _Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


@dataclass(frozen=True)
class Visitor:
    """Who is asking: a principal, and the session when signed in by cookie (None: the Authorization header)."""

    principal: Principal
    session: SignedIn | None = None

    @property
    def csrf(self) -> str:
        return self.session.csrf if self.session else ""


def _visitor(request: Request) -> Visitor:
    ctx = request.app.state.ctx
    header = request.headers.get("authorization")
    if header:
        try:
            principal = authenticate_counted(ctx, request, header)
        except AuthenticationFailed:
            raise _SignIn() from None
        return Visitor(open_dashboard.check(principal))
    cookie = request.cookies.get(COOKIE)
    signed_in = resume_session(ctx, cookie, now=_now(request)) if cookie else None
    if signed_in is None:
        raise _SignIn()
    return Visitor(open_dashboard.check(signed_in.principal), signed_in)


def _from_this_dashboard(request: Request, visitor: Visitor, csrf: str) -> None:
    """Refuse a POST a page elsewhere may have made the browser send: wrong origin or CSRF token."""
    if visitor.session is None:
        return  # signed by the Authorization header, which a browser never adds by itself
    _same_origin(request)
    if not csrf_matches(visitor.session, csrf):
        raise PermissionDenied("refused: this form did not come from your dashboard session (its CSRF token is "
                               "missing or wrong; a page elsewhere may be trying to act in your name). "
                               "Reload the dashboard page and send the form again.")


def _origin(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of a URL or Origin value, default ports filled in; None for "null" or junk."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        return None
    return scheme, host, port or (443 if scheme == "https" else 80)


def _same_origin(request: Request) -> None:
    """The request's ``Origin`` (or ``Referer`` without one) is this server's own origin, else a 403 saying
    why. Our origin is the scheme the request arrived with (behind a TLS proxy: ``--proxy-headers``) and its
    Host header."""
    own_text = f"{request.url.scheme}://{request.url.netloc}"
    header, sent = "Origin", request.headers.get("origin")
    if sent is None:
        header, sent = "Referer", request.headers.get("referer")
    if sent is None:
        raise PermissionDenied("refused: the browser sent neither an Origin nor a Referer header, so this form "
                               f"cannot be shown to come from the dashboard at {own_text}")
    own = _origin(own_text)
    if own is None or _origin(sent) != own:
        raise PermissionDenied(f"refused: this form was sent from {sent[:200]!r} ({header} header), not from the "
                               f"dashboard at {own_text}; a page elsewhere may be trying to act in your name. "
                               "Use the dashboard's own pages.")


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def page(render: Callable[..., str]) -> Callable[..., Response]:
    """Turn sign-in, redirects and Kipimo errors into pages instead of JSON."""

    def wrapped(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return _html(render(request, *args, **kwargs))
        except _SignIn:  # back to this page after signing in; a form's target cannot be opened, so the start
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            target = target if request.method == "GET" else "/dashboard"
            return RedirectResponse(f"/dashboard/login?next={quote(target)}", status_code=303)
        except _Redirect as go:
            return RedirectResponse(go.url, status_code=303)
        except KipimoError as exc:
            return _html(pages.render("problem.html", status=exc.status_code, message=exc.message), exc.status_code)

    return wrapped


def _names(session: Session) -> tuple[list[str], list[str]]:
    products = list(session.scalars(select(Product.slug).order_by(Product.slug)))
    nodes = list(session.scalars(select(Node.name).order_by(Node.name)))
    return products, nodes


def _frame(session: Session, visitor: Visitor, active: str = "") -> pages.Frame:
    open_count = len(alerting.list_alerts(session, status="open", limit=500))
    who = visitor.principal
    return pages.Frame(who=f"{who.name} ({who.role.value})", open_alerts=open_count, active=active,
                       csrf=visitor.csrf, pending_reviews=reviewing.pending_count(session))


def _alerts(session: Session, **kw: Any) -> list[dict[str, Any]]:
    return [alerting.alert_view(a) for a in alerting.list_alerts(session, **kw)]


def _can_ack(visitor: Visitor) -> bool:
    return acknowledge_alerts.allows(visitor.principal)


def _now(request: Request) -> dt.datetime:
    return request.app.state.ctx.clock.now()


# --- pages ----------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def overview(request: Request, f: FiltersDep, session: SessionDep) -> Response:
    @page
    def render(request: Request) -> str:
        visitor = _visitor(request)
        an, now = get_analytics(request), _now(request)
        data = insights.overview(an, session, f, now=now)
        pcharts = insights.p_charts(an, session, f, now=now) if f.product else None
        products, nodes = _names(session)
        alerts = _alerts(session, status="open", product=f.product, node=f.node, limit=50)
        return pages.render("overview.html", frame=_frame(session, visitor, "network"), data=data,
                            products=products, nodes=nodes, alerts=alerts, can_ack=_can_ack(visitor),
                            pcharts=pcharts)

    return render(request)


@router.get("/products/{slug}", response_class=HTMLResponse)
def product(request: Request, slug: str, f: FiltersDep, session: SessionDep) -> Response:
    product = slug
    @page
    def render(request: Request) -> str:
        visitor = _visitor(request)
        an, now = get_analytics(request), _now(request)
        pf = q.Filters(product=product, version=f.version, node=f.node, since=f.since, until=f.until, check=f.check)
        rates = insights.rates(an, session, pf, now=now)
        pcharts = insights.p_charts(an, session, pf, now=now)
        measures = insights.measurements(an, session, pf, now=now)
        products, nodes = _names(session)
        return pages.render("product.html", frame=_frame(session, visitor), product=product, rates=rates,
                            pcharts=pcharts, measures=measures, products=products, nodes=nodes,
                            alerts=_alerts(session, status="open", product=product, node=f.node),
                            can_ack=_can_ack(visitor))

    return render(request)


@router.get("/nodes/{name}", response_class=HTMLResponse)
def node(request: Request, name: str, f: FiltersDep, session: SessionDep) -> Response:
    node = name
    @page
    def render(request: Request) -> str:
        visitor = _visitor(request)
        row = session.scalars(select(Node).where(Node.name == node)).one_or_none()
        if row is None:
            raise NotFound(f"no node {node!r}")
        an, now = get_analytics(request), _now(request)
        nf = q.Filters(node=node, since=f.since, until=f.until, version=None)
        r = q.resolve(session, q.round_window(nf, now=now), now=now)
        made = an.cached(session, ("products-of", r.filters), lambda: _products_of(session, r))
        blocks = []
        for slug in made:
            pf = q.Filters(product=slug, node=node, since=f.since, until=f.until)
            blocks.append((slug, insights.p_charts(an, session, pf, now=now),
                           insights.measurements(an, session, pf, now=now)))
        return pages.render("node.html", frame=_frame(session, visitor), node=node, title=row.title,
                            blocks=blocks, lots=insights.recent_lots(session, node_id=row.id),
                            alerts=_alerts(session, status="open", node=node), can_ack=_can_ack(visitor),
                            filters=insights.filters_view(r))

    return render(request)


def _products_of(session: Session, r: q.Resolved) -> list[str]:
    """Products a node inspected in the window (one indexed aggregate)."""
    slugs = {int(i): str(s) for i, s in session.execute(select(Product.id, Product.slug))}
    return sorted(slugs[i] for i in q.product_ids_of(session, r) if i in slugs)


@router.get("/lots/{lot_id}", response_class=HTMLResponse)
def lot(request: Request, lot_id: int, session: SessionDep) -> Response:
    @page
    def render(request: Request) -> str:
        visitor = _visitor(request)
        data = get_analytics(request).cached(session, ("lot", lot_id), lambda: insights.lot_view(session, lot_id))
        return pages.render("lot.html", frame=_frame(session, visitor), data=data)

    return render(request)


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, session: SessionDep) -> Response:
    @page
    def render(request: Request) -> str:
        visitor = _visitor(request)
        return pages.render("alerts.html", frame=_frame(session, visitor, "alerts"),
                            open_alerts=_alerts(session, status="open", limit=200),
                            done=_alerts(session, status="acknowledged", limit=100), can_ack=_can_ack(visitor))

    return render(request)


@router.post("/alerts/{alert_id}/acknowledge", response_class=HTMLResponse)
def acknowledge(request: Request, alert_id: int, session: SessionDep, comment: Annotated[str, Form()] = "",
                back: Annotated[str, Form()] = "/dashboard/alerts", csrf: Annotated[str, Form()] = "") -> Response:
    @page
    def render(request: Request) -> str:
        visitor = _visitor(request)
        _from_this_dashboard(request, visitor, csrf)
        principal = acknowledge_alerts.check(visitor.principal)
        acknowledge_alert(session, principal, alert_id, comment, now=_now(request))
        raise _Redirect(_safe_next(back))

    return render(request)


# --- reviews --------------------------------------------------------------------------------------


@router.get("/reviews", response_class=HTMLResponse)
def reviews_page(request: Request, session: SessionDep, status: str = "pending", node: str = "",
                 product: str = "") -> Response:
    @page
    def render(request: Request) -> str:
        visitor = _visitor(request)
        shown: reviewing.ReviewStatus = "decided" if status == "decided" else "all" if status == "all" else "pending"
        where = reviewing.ReviewFilter(status=shown, node=node or None, product=product or None)
        items, more = reviewing.list_reviews(session, where=where, limit=REVIEW_PAGE)
        products, nodes = _names(session)
        return pages.render("reviews.html", frame=_frame(session, visitor, "reviews"), items=items, status=shown,
                            node=node, product=product, products=products, nodes=nodes, more=more is not None,
                            can_decide=decide_reviews.allows(visitor.principal))

    return render(request)


REVIEW_PAGE = 100


@router.post("/reviews/{submission_id}/decision", response_class=HTMLResponse)
def decide_review(request: Request, submission_id: str, decision: Annotated[str, Form()] = "",
                  reason: Annotated[str, Form()] = "", back: Annotated[str, Form()] = "/dashboard/reviews",
                  csrf: Annotated[str, Form()] = "") -> Response:
    @page
    def render(request: Request) -> str:
        visitor = _visitor(request)
        _from_this_dashboard(request, visitor, csrf)
        principal = decide_reviews.check(visitor.principal)
        reviewing.decide_review(request.app.state.ctx, submission_id=submission_id, decision=decision,
                                reason=reason, principal=principal, now=_now(request))  # checks the form's text
        raise _Redirect(_safe_next(back))

    return render(request)


@router.get("/reviews/{submission_id}/photos/{slot}")
def review_photo(request: Request, submission_id: str, slot: str, session: SessionDep,
                 overlay: bool = False) -> Response:
    """A record's photo (or its overlay) for the review page: the API's photo rule, by dashboard sign-in."""
    try:
        visitor = _visitor(request)
    except (_SignIn, PermissionDenied):
        return Response(status_code=403, headers=HEADERS)
    sub = repo.get_submission(session, id=submission_id)
    photo = next((p for p in sub.photos if p.slot == slot), None) if sub is not None \
        and visitor.principal.may_see_node(sub.node_id) else None
    sha = (photo.overlay_sha256 if overlay else photo.sha256) if photo is not None else None
    store = request.app.state.ctx.store
    if photo is None or not sha or not store.exists(sha):
        return Response(status_code=404, headers=HEADERS)
    return FileResponse(store.path(sha), media_type="image/png" if overlay else photo.media_type,
                        headers={**HEADERS, "Cache-Control": "private, max-age=3600"})


# --- sign-in, sign-out and assets -----------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(next: str = "/dashboard") -> Response:  # noqa: A002 - the query parameter's name
    return _login_page(next)


def _login_page(next_url: str, error: str | None = None, status: int = 200) -> Response:
    return _html(pages.render("login.html", frame=pages.Frame(active="login"), error=error,
                              next_url=_safe_next(next_url)), status)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/dashboard") -> Response:  # noqa: A002, E501
    ctx, now, token = request.app.state.ctx, _now(request), token.strip()
    try:
        _same_origin(request)  # login CSRF: another page must not sign this browser in as someone else
    except PermissionDenied as exc:
        return _login_page(next, exc.message, 403)
    try:
        principal = open_dashboard.check(authenticate_counted(ctx, request, f"Bearer {token}" if token else None))
    except TooManyRequests as exc:
        page = _login_page(next, exc.message, 429)
        page.headers["Retry-After"] = str(exc.retry_after_s)
        return page
    except KipimoError as exc:
        return _login_page(next, exc.message, 401)
    secret, signed_in = start_session(ctx, principal, now=now)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(COOKIE, secret, httponly=True, samesite="strict", path="/dashboard",
                        secure=request.url.scheme == "https",
                        max_age=int((signed_in.expires_at - now).total_seconds()))
    return response


@router.get("/logout", response_class=HTMLResponse)
def logout_form(request: Request, session: SessionDep) -> Response:
    """A page with the sign-out button (signing out is a POST: a link could be followed by any page)."""
    @page
    def render(request: Request) -> str:
        visitor = _visitor(request)
        return pages.render("logout.html", frame=_frame(session, visitor))

    return render(request)


@router.post("/logout", response_class=HTMLResponse)
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    @page
    def render(request: Request) -> str:
        try:
            visitor: Visitor | None = _visitor(request)
        except _SignIn:
            visitor = None  # already signed out (or expired): only the cookie is left to clear
        if visitor is not None and visitor.session is not None:
            _from_this_dashboard(request, visitor, csrf)
            end_session(request.app.state.ctx, visitor.session, now=_now(request))
        raise _Redirect("/dashboard/login")

    response = render(request)
    if response.status_code == 303:
        response.delete_cookie(COOKIE, path="/dashboard", secure=request.url.scheme == "https", httponly=True,
                               samesite="strict")
    return response


def _safe_next(url: str) -> str:
    return url if url.startswith("/dashboard") and "//" not in url and "\\" not in url else "/dashboard"


@router.get("/static/dashboard.css")
def stylesheet() -> Response:
    return Response(pages.CSS_PATH.read_bytes(), media_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

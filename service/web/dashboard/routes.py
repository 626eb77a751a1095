"""The quality manager's dashboard: server-rendered HTML pages with inline SVG charts (no script).

Pages: ``/dashboard`` (the network at a glance), ``/dashboard/products/{slug}``,
``/dashboard/nodes/{name}``, ``/dashboard/lots/{id}``, ``/dashboard/alerts``.
Managers, auditors and admins sign in with their bearer token: either the
``Authorization`` header, or a cookie set by pasting the token into
``/dashboard/login`` (HttpOnly, SameSite=Strict, so another site cannot post
the acknowledge form on the user's behalf).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from qc.errors import AuthenticationFailed, KipimoError, NotFound
from service.core import alerts as alerting
from service.core import analytics as q
from service.core import insights
from service.core.auth import Principal, authenticate
from service.http.deps import READERS, Allowed, SessionDep, acknowledge_alerts
from service.http.routes.analytics import FiltersDep, acknowledge_alert, get_analytics
from service.storage.orm import Node, Product
from service.web.dashboard import pages

__all__ = ["COOKIE", "router"]

router = APIRouter(prefix="/dashboard", include_in_schema=False)
COOKIE = "kipimo_dashboard"
CSP = ("default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store"}


# The pages catch refusals themselves (to show a page, not JSON), so they apply the gates of
# service/http/deps.py by calling them rather than as dependencies.
open_dashboard = Allowed(*READERS, action="open the dashboard")


class _SignIn(Exception):
    """No usable credentials: send the browser to the sign-in form."""


def _principal(request: Request) -> Principal:
    header = request.headers.get("authorization")
    token = request.cookies.get(COOKIE)
    with request.app.state.ctx.db.session() as session:
        try:
            principal = authenticate(session, header or (f"Bearer {token}" if token else None))
        except AuthenticationFailed:
            raise _SignIn() from None
    return open_dashboard.check(principal)


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def page(render: Callable[..., str]) -> Callable[..., Response]:
    """Turn sign-in and Kipimo errors into pages instead of JSON."""

    def wrapped(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return _html(render(request, *args, **kwargs))
        except _SignIn:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/dashboard/login?next={quote(target)}", status_code=303)
        except KipimoError as exc:
            return _html(pages.render("problem.html", status=exc.status_code, message=exc.message), exc.status_code)

    return wrapped


def _names(session: Session) -> tuple[list[str], list[str]]:
    products = list(session.scalars(select(Product.slug).order_by(Product.slug)))
    nodes = list(session.scalars(select(Node.name).order_by(Node.name)))
    return products, nodes


def _frame(session: Session, principal: Principal, active: str = "") -> pages.Frame:
    open_count = len(alerting.list_alerts(session, status="open", limit=500))
    return pages.Frame(who=f"{principal.name} ({principal.role.value})", open_alerts=open_count, active=active)


def _alerts(session: Session, **kw: Any) -> list[dict[str, Any]]:
    return [alerting.alert_view(a) for a in alerting.list_alerts(session, **kw)]


def _can_ack(principal: Principal) -> bool:
    return acknowledge_alerts.allows(principal)


def _now(request: Request) -> dt.datetime:
    return request.app.state.ctx.clock.now()


# --- pages ----------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def overview(request: Request, f: FiltersDep, session: SessionDep) -> Response:
    @page
    def render(request: Request) -> str:
        principal = _principal(request)
        an, now = get_analytics(request), _now(request)
        data = insights.overview(an, session, f, now=now)
        pcharts = insights.p_charts(an, session, f, now=now) if f.product else None
        products, nodes = _names(session)
        alerts = _alerts(session, status="open", product=f.product, node=f.node, limit=50)
        return pages.render("overview.html", frame=_frame(session, principal, "network"), data=data,
                            products=products, nodes=nodes, alerts=alerts, can_ack=_can_ack(principal),
                            pcharts=pcharts)

    return render(request)


@router.get("/products/{slug}", response_class=HTMLResponse)
def product(request: Request, slug: str, f: FiltersDep, session: SessionDep) -> Response:
    product = slug
    @page
    def render(request: Request) -> str:
        principal = _principal(request)
        an, now = get_analytics(request), _now(request)
        pf = q.Filters(product=product, version=f.version, node=f.node, since=f.since, until=f.until, check=f.check)
        rates = insights.rates(an, session, pf, now=now)
        pcharts = insights.p_charts(an, session, pf, now=now)
        measures = insights.measurements(an, session, pf, now=now)
        products, nodes = _names(session)
        return pages.render("product.html", frame=_frame(session, principal), product=product, rates=rates,
                            pcharts=pcharts, measures=measures, products=products, nodes=nodes,
                            alerts=_alerts(session, status="open", product=product, node=f.node),
                            can_ack=_can_ack(principal))

    return render(request)


@router.get("/nodes/{name}", response_class=HTMLResponse)
def node(request: Request, name: str, f: FiltersDep, session: SessionDep) -> Response:
    node = name
    @page
    def render(request: Request) -> str:
        principal = _principal(request)
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
        return pages.render("node.html", frame=_frame(session, principal), node=node, title=row.title,
                            blocks=blocks, lots=insights.recent_lots(session, node_id=row.id),
                            alerts=_alerts(session, status="open", node=node), can_ack=_can_ack(principal),
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
        principal = _principal(request)
        data = get_analytics(request).cached(session, ("lot", lot_id), lambda: insights.lot_view(session, lot_id))
        return pages.render("lot.html", frame=_frame(session, principal), data=data)

    return render(request)


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, session: SessionDep) -> Response:
    @page
    def render(request: Request) -> str:
        principal = _principal(request)
        return pages.render("alerts.html", frame=_frame(session, principal, "alerts"),
                            open_alerts=_alerts(session, status="open", limit=200),
                            done=_alerts(session, status="acknowledged", limit=100), can_ack=_can_ack(principal))

    return render(request)


@router.post("/alerts/{alert_id}/acknowledge", response_class=HTMLResponse)
def acknowledge(request: Request, alert_id: int, session: SessionDep, comment: Annotated[str, Form()] = "",
                back: Annotated[str, Form()] = "/dashboard/alerts") -> Response:
    @page
    def render(request: Request) -> str:
        principal = _principal(request)
        acknowledge_alerts.check(principal)
        acknowledge_alert(session, principal, alert_id, comment, now=_now(request))
        raise _Redirect(_safe_next(back))

    try:
        return render(request)
    except _Redirect as go:
        return RedirectResponse(go.url, status_code=303)


class _Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


# --- sign-in and assets ---------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(next: str = "/dashboard") -> Response:  # noqa: A002 - the query parameter's name
    return _html(pages.render("login.html", frame=pages.Frame(active="login"), error=None,
                              next_url=_safe_next(next)))


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/dashboard") -> Response:  # noqa: A002, E501
    token = token.strip()
    try:
        with request.app.state.ctx.db.session() as session:
            principal = authenticate(session, f"Bearer {token}" if token else None)
        open_dashboard.check(principal)
    except KipimoError as exc:
        return _html(pages.render("login.html", error=exc.message, next_url=_safe_next(next)), 401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/dashboard",
                        secure=request.url.scheme == "https", max_age=12 * 3600)
    return response


@router.get("/logout")
def logout() -> Response:
    response = RedirectResponse("/dashboard/login", status_code=303)
    response.delete_cookie(COOKIE, path="/dashboard")
    return response


def _safe_next(url: str) -> str:
    return url if url.startswith("/dashboard") and "//" not in url and "\\" not in url else "/dashboard"


@router.get("/static/dashboard.css")
def stylesheet() -> Response:
    return Response(pages.CSS_PATH.read_bytes(), media_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

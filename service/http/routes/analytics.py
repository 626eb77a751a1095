"""Analytics and alerts for managers and auditors: the data behind every dashboard chart and table.

Every chart endpoint takes the same filters (product, standard version, node,
date range on the capture time, check) and answers JSON ready to draw; the
dashboard pages (``service.web.dashboard.routes``) and ``qc report`` use the same
functions. Answers are cached per filter and data version (see
``service.core.analytics.Analytics``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BeforeValidator, Field

from service.core import alerts as alerting
from service.core import analytics as q
from service.core import insights
from service.core.auth import Principal
from service.core.schemas import ErrorOut, Id, InputModel, UtcDateTime
from service.http.deps import CanAcknowledgeAlerts, CanReadAnalytics, NowDep, SessionDep, read_analytics

__all__ = ["FiltersDep", "get_analytics", "readable", "router"]

# unknown product, node or lot in a filter: 404 (service.core.alerts, service.core.analytics)
router = APIRouter(prefix="/analytics", tags=["analytics"], responses={404: {"model": ErrorOut}})
alerts_router = APIRouter(prefix="/alerts", tags=["alerts"], responses={404: {"model": ErrorOut}})

def get_analytics(request: Request) -> q.Analytics:
    """The app's one ``Analytics`` (query cache), made on first use."""
    state = request.app.state
    if getattr(state, "analytics", None) is None:
        state.analytics = q.Analytics(state.ctx.db)
    return state.analytics


AnalyticsDep = Annotated[q.Analytics, Depends(get_analytics)]


def readable(principal: Principal) -> Principal:
    """The principal, if it may read the network's analytics (``CanReadAnalytics`` as a plain call)."""
    return read_analytics.check(principal)


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value  # an HTML form sends an empty field for "not set"


def get_filters(
    product: Annotated[str | None, Query(description="product slug")] = None,
    version: Annotated[Id | None, BeforeValidator(_blank_is_none),
                       Query(description="standard version (with product)")] = None,
    node: Annotated[str | None, Query(description="node name")] = None,
    since: Annotated[UtcDateTime | None, BeforeValidator(_blank_is_none),
                     Query(description="captured at or after (YYYY-MM-DD or ISO 8601; no zone: UTC); "
                                       f"default {q.DEFAULT_WEEKS} weeks before until")] = None,
    until: Annotated[UtcDateTime | None, BeforeValidator(_blank_is_none),
                     Query(description="captured before (YYYY-MM-DD or ISO 8601; no zone: UTC); "
                                       "default the end of today (UTC)")] = None,
    check: Annotated[str | None, Query(description="check id (measurements)")] = None,
) -> q.Filters:
    """The shared filters; empty values (as an HTML form sends them) mean "not set"."""
    return q.Filters(product=product or None, version=version, node=node or None, since=since, until=until,
                     check=check or None)


FiltersDep = Annotated[q.Filters, Depends(get_filters)]


@router.get("/overview", summary="Network at a glance: per-node rates, funnel, Pareto, open alerts")
def overview(session: SessionDep, _reader: CanReadAnalytics, an: AnalyticsDep, f: FiltersDep,
             now: NowDep) -> dict[str, Any]:
    body = dict(insights.overview(an, session, f, now=now))
    body["alerts"] = [alerting.alert_view(a) for a in
                      alerting.list_alerts(session, status="open", product=f.product, node=f.node, limit=50)]
    return body


@router.get("/rates", summary="Defect rate per node with Wilson 95 % intervals, funnel limits, homogeneity test")
def rates(session: SessionDep, _reader: CanReadAnalytics, an: AnalyticsDep, f: FiltersDep,
          now: NowDep) -> dict[str, Any]:
    return insights.rates(an, session, f, now=now)


@router.get("/p-chart", summary="Weekly p-chart per node against the network rate, with run-rule violations")
def p_chart(session: SessionDep, _reader: CanReadAnalytics, an: AnalyticsDep, f: FiltersDep,
            now: NowDep) -> dict[str, Any]:
    return insights.p_charts(an, session, f, now=now)


@router.get("/pareto", summary="Failed checks by frequency, with cumulative share")
def pareto(session: SessionDep, _reader: CanReadAnalytics, an: AnalyticsDep, f: FiltersDep,
           now: NowDep) -> dict[str, Any]:
    return insights.pareto(an, session, f, now=now)


@router.get("/measurements", summary="X-bar/S (or I-MR) chart and capability per measured check of a product")
def measurements(session: SessionDep, _reader: CanReadAnalytics, an: AnalyticsDep, f: FiltersDep,
                 now: NowDep) -> dict[str, Any]:
    return insights.measurements(an, session, f, now=now)


@router.get("/lots/{lot_id}", summary="One lot: units, verdicts, failed checks, measured values")
def lot(lot_id: Id, session: SessionDep, _reader: CanReadAnalytics, an: AnalyticsDep) -> dict[str, Any]:
    return an.cached(session, ("lot", lot_id), lambda: insights.lot_view(session, lot_id))


# --- alerts ---------------------------------------------------------------------------------------


class AcknowledgeIn(InputModel):
    comment: str = Field(min_length=1, max_length=4000, description="what was found or done")


@alerts_router.get("", summary="Alerts, newest first (status open by default; 'all' for every one)")
def list_alerts(
    session: SessionDep,
    _reader: CanReadAnalytics,
    status: Annotated[str, Query(pattern="^(open|acknowledged|all)$")] = "open",
    product: str | None = None,
    node: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    rows = alerting.list_alerts(session, status=None if status == "all" else status, product=product, node=node,
                                limit=limit)
    return {"items": [alerting.alert_view(a) for a in rows]}


@alerts_router.post("/{alert_id}/acknowledge", summary="Acknowledge an alert with a comment (managers)")
def acknowledge(alert_id: Id, session: SessionDep, principal: CanAcknowledgeAlerts, now: NowDep,
                body: Annotated[AcknowledgeIn, Body()]) -> dict[str, Any]:
    return acknowledge_alert(session, principal, alert_id, body.comment, now=now)


def acknowledge_alert(session: Any, principal: Principal, alert_id: int, comment: str, *,
                      now: dt.datetime) -> dict[str, Any]:
    """Acknowledge and record it in the audit log, in one transaction."""
    from service.storage import repository as repo  # noqa: PLC0415

    alert = alerting.acknowledge_alert(session, alert_id=alert_id, by=principal.actor, comment=comment, now=now)
    repo.add_audit_event(session, actor=principal.actor, role=principal.role.value, action="alert.acknowledge",
                         subject_type="alert", subject_id=str(alert_id), detail={"comment": alert.comment}, now=now)
    view = alerting.alert_view(alert)
    session.commit()
    return view

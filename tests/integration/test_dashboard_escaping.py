"""Hostile values on the dashboard and in ``qc report``: shown as text everywhere, never run as markup.

A node title, a lot code and a token's name are free text from people; product slugs and node names are
validated today, but the templates must not rely on that, so they are also rendered with hostile ones.
Each page is parsed with ``html.parser``: the hostile string must be in its text or attribute values
(it is shown, escaped) and the page must hold no ``<script>`` element and no ``on…`` attribute (nothing
broke out of its place). A template that reads a value nobody passed raises instead of printing nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from html.parser import HTMLParser
from typing import Any

import jinja2
import pytest
from sqlalchemy import select

from service.core import alerts as alerting
from service.core import analytics as q
from service.core import insights
from service.core.auth import create_token
from service.reports.quality_report import build_report
from service.storage.orm import Lot, Node
from service.web.dashboard import pages
from tests.clock import TEST_NOW
from tests.integration.support import TEST_PRODUCT, auth
from tests.integration.test_dashboard_pages import network  # noqa: F401 - the fixture this module builds on

# Breaks out of element content, of double- and of single-quoted attributes, if anything is left unescaped.
HOSTILE = "<script>alert(1)</script>\" onmouseover=\"alert(2)' onfocus='alert(3)"
SINCE = TEST_NOW - dt.timedelta(weeks=12)


class Parsed(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.texts: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def assert_shown_escaped(html: str, value: str = HOSTILE) -> Parsed:
    page = Parsed(html)
    assert "script" not in page.tags, "a <script> element reached the page"
    handlers = [name for name, _ in page.attributes if name.startswith("on")]
    assert not handlers, f"event-handler attributes reached the page: {handlers}"
    assert value in "".join(page.texts), "the value is not shown as text"
    assert "<script>alert(1)" not in html
    return page


@pytest.fixture
def hostile(ctx: Any, seed: Any, request: pytest.FixtureRequest) -> Any:
    """The dashboard network with node-b titled HOSTILE (before its alerts are raised), one of its lots coded
    HOSTILE, and a manager token named HOSTILE."""
    with ctx.db.write_session() as session:
        session.scalars(select(Node).where(Node.name == "node-b")).one().title = HOSTILE
        manager = create_token(session, actor="tests", role="manager", name=HOSTILE,
                               now=TEST_NOW - dt.timedelta(days=1))[0]
    net = request.getfixturevalue("network")
    with ctx.db.write_session() as session:
        node_b = session.scalars(select(Node).where(Node.name == "node-b")).one()
        lot = session.scalars(select(Lot).where(Lot.node_id == node_b.id).order_by(Lot.id)).first()
        assert lot is not None
        lot.code = HOSTILE
        lot_id = lot.id
    return net, manager, lot_id


def test_every_page_shows_hostile_names_and_titles_as_text(client: Any, hostile: Any) -> None:
    _net, manager, lot_id = hostile
    headers = auth(manager)
    urls = ["/dashboard", f"/dashboard?product={TEST_PRODUCT}", f"/dashboard/products/{TEST_PRODUCT}",
            "/dashboard/nodes/node-b", f"/dashboard/lots/{lot_id}", "/dashboard/alerts"]
    for url in urls:
        res = client.get(url, headers=headers)
        assert res.status_code == 200, (url, res.text[:300])
        assert_shown_escaped(res.text)  # at least the signed-in name in the header
    node = Parsed(client.get("/dashboard/nodes/node-b", headers=headers).text)
    text = "".join(node.texts)
    # the node by its title (page title, heading, readings) and its lot by its code (recent lots)
    assert text.count(HOSTILE) >= 4
    lot = Parsed(client.get(f"/dashboard/lots/{lot_id}", headers=headers).text)
    assert f"Lot {HOSTILE}" in "".join(lot.texts)
    alerts = client.get("/dashboard/alerts", headers=headers).text
    assert "".join(Parsed(alerts).texts).count(HOSTILE) >= 2, "the alert message names the node by its title"


def test_the_report_shows_a_hostile_node_title_as_text(ctx: Any, hostile: Any) -> None:
    html = build_report(ctx, q.Filters(product=TEST_PRODUCT, since=SINCE), now=TEST_NOW)
    page = assert_shown_escaped(html)
    assert "".join(page.texts).count(HOSTILE) >= 2  # in the readings and the alert list


def _views(ctx: Any, lot_id: int) -> dict[str, Any]:
    """Every view the pages read, computed from the stored network (as the routes do)."""
    an = q.Analytics(ctx.db)
    f = q.Filters(product=TEST_PRODUCT, since=SINCE)
    with ctx.db.session() as session:
        alerts = [alerting.alert_view(a) for a in alerting.list_alerts(session, status="open")]
        return {
            "overview": insights.overview(an, session, f, now=TEST_NOW),
            "rates": insights.rates(an, session, f, now=TEST_NOW),
            "pcharts": insights.p_charts(an, session, f, now=TEST_NOW),
            "measures": insights.measurements(an, session, f, now=TEST_NOW),
            "pareto": insights.pareto(an, session, f, now=TEST_NOW),
            "lot": insights.lot_view(session, lot_id),
            "lots": insights.recent_lots(session),
            "alerts": alerts,
            "done": [{**a, "status": "acknowledged", "acknowledged_by": "x", "acknowledged_at": a["created_at"],
                      "comment": "ok"} for a in alerts],
        }


def _hostile_names(views: dict[str, Any], product: str, node: str) -> dict[str, Any]:
    """The same views with the product slug and node-b's name replaced by hostile strings."""
    text = json.dumps(views)
    for old, new in ((TEST_PRODUCT, product), ("node-b", node)):
        text = text.replace(old, json.dumps(new)[1:-1])
    return dict(json.loads(text))


@pytest.mark.parametrize("page", ["overview", "product", "node", "lot", "alerts", "report"])
def test_templates_escape_hostile_product_and_node_names(ctx: Any, hostile: Any, page: str) -> None:
    _net, _manager, lot_id = hostile
    product, node = "p" + HOSTILE, "n" + HOSTILE
    v = _hostile_names(_views(ctx, lot_id), product, node)
    frame = pages.Frame(who="someone", open_alerts=len(v["alerts"]))
    common = {"products": [product], "nodes": ["node-a", node], "alerts": v["alerts"], "can_ack": True}
    html = {
        "overview": lambda: pages.render("overview.html", frame=frame, data=v["overview"], pcharts=v["pcharts"],
                                         **common),
        "product": lambda: pages.render("product.html", frame=frame, product=product, rates=v["rates"],
                                        pcharts=v["pcharts"], measures=v["measures"], **common),
        "node": lambda: pages.render("node.html", frame=frame, node=node, title="", lots=v["lots"],
                                     blocks=[(product, v["pcharts"], v["measures"])], alerts=v["alerts"],
                                     can_ack=True, filters=v["rates"]["filters"]),
        "lot": lambda: pages.render("lot.html", frame=frame, data=v["lot"]),
        "alerts": lambda: pages.render("alerts.html", frame=frame, open_alerts=v["alerts"], done=v["done"],
                                       can_ack=True),
        "report": lambda: pages.render("report.html", product=product, generated="2026-11-26 00:00",
                                       rates=v["rates"], pcharts=v["pcharts"], measures=v["measures"],
                                       pareto=v["pareto"], alerts=v["alerts"]),
    }[page]()
    shows_product = page != "alerts" or bool(v["alerts"])
    if shows_product:
        assert_shown_escaped(html, product)
    assert_shown_escaped(html, node)


def test_the_sign_in_and_problem_pages_escape_what_they_are_given() -> None:
    login = pages.render("login.html", error=HOSTILE, next_url="/dashboard?x=" + HOSTILE)
    page = assert_shown_escaped(login)
    assert ("value", "/dashboard?x=" + HOSTILE) in page.attributes  # the hidden "next" field
    assert_shown_escaped(pages.render("problem.html", status=404, message=HOSTILE))


def test_a_value_the_template_reads_but_nobody_passed_is_an_error() -> None:
    with pytest.raises(jinja2.UndefinedError, match="data"):
        pages.render("lot.html")
    lot = {"lot": {"id": 1, "node": "node-a", "product": TEST_PRODUCT, "created_at": "2026-11-01T00:00:00"},
           "n": 0, "defects": 0, "reviews": 0, "units": [], "measurements": [], "reading": "No inspections."}
    with pytest.raises(jinja2.UndefinedError, match="code"):  # the lot's code is missing
        pages.render("lot.html", data=lot)
    with pytest.raises(jinja2.UndefinedError, match="status"):
        pages.render("problem.html", message="x")

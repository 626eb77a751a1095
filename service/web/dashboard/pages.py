"""The dashboard's HTML: plain f-strings around the SVG charts of ``figures`` (no script on any page).

Every page is a function from view data (``service.core.insights``) to a string, so
the same markup serves the live dashboard and ``qc report``'s offline file.
Every value that came from the database passes through ``esc``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from service.web.dashboard import figures

__all__ = ["CSS_PATH", "alert_items", "alerts_page", "chart_card", "layout", "login_page", "lot_page",
           "measurement_block", "node_page", "overview_page", "p_chart_grid", "product_page", "rates_table",
           "readings", "report_document"]

CSS_PATH = Path(__file__).with_name("dashboard.css")


def esc(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f} %"


def num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _qs(filters: dict[str, Any], **extra: Any) -> str:
    keep = {k: v for k, v in {**filters, **extra}.items() if v not in (None, "") and k in
            ("product", "version", "node", "since", "until", "check")}
    return ("?" + urlencode(keep)) if keep else ""


# --- frame ----------------------------------------------------------------------------------------


def layout(title: str, body: str, *, active: str = "", who: str = "", open_alerts: int = 0,
           inline_css: bool = False) -> str:
    """A full page. ``inline_css`` embeds the style sheet (offline reports)."""
    css = f"<style>{CSS_PATH.read_text(encoding='utf-8')}</style>" if inline_css else \
        '<link rel="stylesheet" href="/dashboard/static/dashboard.css">'
    nav = "" if inline_css else _nav(active, who, open_alerts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<title>{esc(title)} · Kipimo</title>{css}</head>
<body><a class="skip" href="#main">Skip to content</a>{nav}
<main id="main">{body}</main></body></html>"""


def _nav(active: str, who: str, open_alerts: int) -> str:
    links = [("network", "/dashboard", "Network"), ("alerts", "/dashboard/alerts", "Alerts")]
    items = []
    for key, href, label in links:
        current = ' aria-current="page"' if key == active else ""
        badge = f'<span class="count" data-open-alerts="{open_alerts}">{open_alerts}</span>' \
            if key == "alerts" and open_alerts else ""
        items.append(f'<a href="{href}"{current}>{label}{badge}</a>')
    return (f'<header class="top"><a class="brand" href="/dashboard">Kipimo · quality</a><nav>{"".join(items)}</nav>'
            f'<span class="who">{esc(who)}</span><a class="who" href="/dashboard/logout" style="color:#fff">Sign out'
            f'</a></header>')


def filter_form(action: str, filters: dict[str, Any], *, products: Sequence[str], nodes: Sequence[str],
                show_product: bool = True, show_node: bool = True) -> str:
    def select(name: str, options: Sequence[str], label: str) -> str:
        opts = ['<option value="">all</option>'] + [
            f'<option value="{esc(o)}"{" selected" if filters.get(name) == o else ""}>{esc(o)}</option>'
            for o in options]
        return f'<label>{label}<select name="{name}">{"".join(opts)}</select></label>'

    parts = []
    if show_product:
        parts.append(select("product", products, "Product"))
    if show_node:
        parts.append(select("node", nodes, "Node"))
    parts.append(f'<label>Standard version<input name="version" type="number" min="1" inputmode="numeric" '
                 f'value="{esc(filters.get("version") or "")}" style="width:7em"></label>')
    parts.append(f'<label>From<input name="since" type="date" value="{esc((filters.get("since") or "")[:10])}">'
                 f'</label>')
    parts.append(f'<label>Before<input name="until" type="date" value="{esc((filters.get("until") or "")[:10])}">'
                 f'</label>')
    return (f'<form class="filters" method="get" action="{esc(action)}" aria-label="Filters">{"".join(parts)}'
            f'<button type="submit">Show</button></form>')


def readings(lines: Iterable[str | None], *, bad_words: Sequence[str] = ("above", "not capable", "beyond",
                                                                       "in a row", "failed", "open alert")) -> str:
    items = []
    for line in lines:
        if not line:
            continue
        cls = "bad" if any(w in line for w in bad_words) else ""
        items.append(f'<li class="{cls}">{esc(line)}</li>')
    return f'<ul class="readings" aria-label="What the charts say">{"".join(items)}</ul>' if items else ""


def chart_card(title: str, svg: str, caption: str | None, *, flagged: bool = False, test_id: str = "") -> str:
    cls = "card chart flagged" if flagged else "card chart"
    cap_cls = ' class="bad"' if flagged else ""
    data = f' data-testid="{esc(test_id)}"' if test_id else ""
    return (f'<figure class="{cls}"{data}><h3>{esc(title)}</h3>{svg}'
            f'<figcaption{cap_cls}>{esc(caption or "")}</figcaption></figure>')


# --- tables ---------------------------------------------------------------------------------------


def _status_tag(status: str) -> str:
    label, cls = {"above": ("above limit", "bad"), "below": ("below limit", "warn"),
                  "warning": ("near limit", "warn"), "within": ("within", "ok")}.get(status, (status, ""))
    return f'<span class="tag {cls}">{label}</span>'


def rates_table(network: dict[str, Any], filters: dict[str, Any]) -> str:
    rows = []
    for n in network["nodes"]:
        link = f'/dashboard/nodes/{esc(n["node"])}{_qs(filters, node=None)}'
        rows.append(f'<tr data-node="{esc(n["node"])}" data-status="{esc(n["status"])}"><td><a href="{link}">'
                    f'{esc(n["node"])}</a></td><td class="num">{n["n"]}</td><td class="num">{n["defects"]}</td>'
                    f'<td class="num">{pct(n["rate"])}</td><td class="num">{pct(n["ci95"][0])} – {pct(n["ci95"][1])}'
                    f'</td><td>{_status_tag(n["status"])}</td></tr>')
    test = network.get("test")
    note = (f'<p class="meta">Are all nodes alike? {esc(test["note"])}: p = {test["p_value"]:.3g}.</p>'
            if test else "")
    return ('<div class="table-wrap"><table><thead><tr><th>Node</th><th class="num">Inspected</th>'
            '<th class="num">Failed</th><th class="num">Defect rate</th><th class="num">95 % interval</th>'
            f'<th>Funnel</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>{note}')


def alert_items(alerts: Sequence[dict[str, Any]], *, can_ack: bool, back: str) -> str:
    if not alerts:
        return '<p class="meta">No alerts.</p>'
    items = []
    for a in alerts:
        what = f'{esc(a["product"])} · <a href="/dashboard/nodes/{esc(a["node"])}">{esc(a["node"])}</a>'
        if a.get("check"):
            what += f' · {esc(a["check"])}'
        if a["status"] == "open" and can_ack:
            action = (f'<form method="post" action="/dashboard/alerts/{a["id"]}/acknowledge">'
                      f'<input type="hidden" name="back" value="{esc(back)}">'
                      f'<label class="skip" for="c{a["id"]}">Comment</label>'
                      f'<input id="c{a["id"]}" type="text" name="comment" required maxlength="4000" '
                      f'placeholder="What was found or done">'
                      f'<button type="submit">Acknowledge</button></form>')
        elif a["status"] == "acknowledged":
            action = (f'<p class="meta">Acknowledged by {esc(a["acknowledged_by"])} on '
                      f'{esc((a["acknowledged_at"] or "")[:16].replace("T", " "))}: “{esc(a["comment"])}”</p>')
        else:
            action = ""
        items.append(f'<li class="{esc(a["status"])}" data-alert-id="{a["id"]}" data-node="{esc(a["node"])}">'
                     f'<strong>{esc(a["message"])}</strong><div class="meta">{what} · raised '
                     f'{esc(a["created_at"][:16].replace("T", " "))} UTC · {esc(a["rule"])}</div>{action}</li>')
    return f'<ul class="alert-list">{"".join(items)}</ul>'


# --- pages ----------------------------------------------------------------------------------------


def overview_page(data: dict[str, Any], *, products: Sequence[str], nodes: Sequence[str],
                  alerts: Sequence[dict[str, Any]], can_ack: bool, pcharts: dict[str, Any] | None = None) -> str:
    f = data["filters"]
    net, par = data["network"], data["pareto"]
    scope = f"{f['product']}" if f.get("product") else "all products"
    lines = list(net["readings"]) + ([par["reading"]] if par["checks"] else [])
    if alerts:
        lines.insert(0, f"{len(alerts)} open alert{'s' if len(alerts) != 1 else ''} — see below.")
    flagged = any(n["status"] == "above" for n in net["nodes"])
    product_links = " · ".join(f'<a href="/dashboard/products/{esc(p)}{_qs(f, product=None)}">{esc(p)}</a>'
                               for p in products)
    body = [
        f'<h1>Network at a glance</h1><p class="sub">{esc(scope)}, captured {esc(f["since"][:10])} to '
        f'{esc(f["until"][:10])} · {net["network"]["n"]} inspections, {net["network"]["defects"]} failed '
        f'({pct(net["network"]["rate"])}). Products: {product_links}</p>',
        filter_form("/dashboard", f, products=products, nodes=nodes),
        readings(lines),
        '<div class="grid">',
        chart_card("Defect rate per node (95 % Wilson interval)", figures.rates_svg(net),
                   net["readings"][0] if net["readings"] else None, flagged=flagged, test_id="rates"),
        chart_card("Funnel plot: defect rate against volume", figures.funnel_svg(net),
                   "Points above the outer (99.8 %) curve are more defective than chance explains.",
                   flagged=flagged, test_id="funnel"),
        '</div>',
    ]
    if pcharts is not None:
        body.append(p_chart_grid(pcharts))
    body.append(f'<div class="grid block">{chart_card("Pareto of failed checks", figures.pareto_svg(par), par["reading"], test_id="pareto")}</div>')  # noqa: E501
    body += [f'<section class="block"><h2>Open alerts</h2>{alert_items(alerts, can_ack=can_ack, back="/dashboard")}'
             '</section>',
             f'<section class="card block"><h2>Nodes</h2>{rates_table(net, f)}</section>']
    return "".join(body)


def p_chart_grid(pcharts: dict[str, Any]) -> str:
    cards = []
    for node in sorted(pcharts["nodes"], key=lambda n: (not n["reading"], n["node"])):  # signals first
        svg = figures.p_chart_svg(node)
        cards.append(chart_card(f"{node['node']}: weekly defect rate", svg,
                                node["reading"] or "Within the limits around the network rate.",
                                flagged=bool(node["reading"]), test_id=f"p-chart-{node['node']}"))
    return (f'<section class="block"><h2>Weekly defect rate per node (p-chart, network rate '
            f'{pct(pcharts["pbar"])})</h2><div class="grid">{"".join(cards)}</div></section>')


def product_page(product: str, rates: dict[str, Any], pcharts: dict[str, Any], measures: dict[str, Any], *,
                 products: Sequence[str], nodes: Sequence[str], alerts: Sequence[dict[str, Any]],
                 can_ack: bool) -> str:
    f = rates["filters"]
    lines = list(pcharts["readings"])
    for m in measures["checks"]:
        lines += m["readings"]
    body = [f'<h1>{esc(product)}</h1><p class="sub">Captured {esc(f["since"][:10])} to {esc(f["until"][:10])}'
            f'{" · node " + esc(f["node"]) if f.get("node") else ""} · {rates["network"]["n"]} inspections, '
            f'{pct(rates["network"]["rate"])} failed.</p>',
            filter_form(f"/dashboard/products/{product}", f, products=products, nodes=nodes, show_product=False),
            readings(lines), p_chart_grid(pcharts)]
    for m in measures["checks"]:
        body.append(measurement_block(m))
    body.append(f'<section class="block"><h2>Open alerts</h2>'
                f'{alert_items(alerts, can_ack=can_ack, back=f"/dashboard/products/{product}")}</section>')
    return "".join(body)


def measurement_block(m: dict[str, Any]) -> str:
    c = m["check"]
    spec = f"spec {num(c['lsl'], 3)} – {num(c['usl'], 3)} {c['unit']}"
    kind = {"xbar_s": "X̄ chart of weekly subgroups (limits from the pooled S)", "imr": "Individuals chart",
            "none": "not enough measurements for a chart"}[m["kind"]]
    flagged = bool(m["readings"]) and "every node is capable" not in m["readings"][0]
    svg = figures.xbar_svg(m["chart"], c, m.get("chart", {}) and m["chart"].get("weeks")) if m["chart"] else ""
    rows = []
    for n in m["nodes"]:
        cpk = n["cpk"]
        cls = "bad" if cpk is not None and cpk < 1.0 else "warn" if cpk is not None and cpk < 1.33 else "ok"
        rows.append(f'<tr data-node="{esc(n["node"])}"><td>{esc(n["node"])}</td><td class="num">{n["n"]}</td>'
                    f'<td class="num">{num(n["mean"], 3)}</td><td class="num">{num(n["s_within"], 4)}</td>'
                    f'<td class="num">{num(n["cp"])}</td><td class="num"><span class="tag {cls}">{num(cpk)}</span></td>'
                    f'<td class="num">{num(n["ppk"])}</td><td>{esc(n["reading"] or "")}</td></tr>')
    table = ('<div class="table-wrap"><table><thead><tr><th>Node</th><th class="num">n</th><th class="num">Mean</th>'
             '<th class="num">s within</th><th class="num">Cp</th><th class="num">Cpk</th><th class="num">Ppk</th>'
             f'<th>Reading</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
    caption = m["readings"][0] if m["readings"] else None
    return (f'<section class="block"><h2>{esc(c["label"])} <span class="meta">({esc(spec)})</span></h2>'
            f'<div class="grid">{chart_card(kind, svg, caption, flagged=flagged, test_id="measure-" + c["id"])}'
            f'<section class="card"><h3>Capability per node</h3>{table}</section></div></section>')


def node_page(node: str, title: str, blocks: Sequence[tuple[str, dict[str, Any], dict[str, Any]]],
              lots: Sequence[dict[str, Any]], alerts: Sequence[dict[str, Any]], *, can_ack: bool,
              filters: dict[str, Any]) -> str:
    body = [f'<h1>{esc(title or node)}</h1><p class="sub">Node {esc(node)} · captured {esc(filters["since"][:10])} '
            f'to {esc(filters["until"][:10])}</p>']
    lines: list[str] = []
    for _product, pc, ms in blocks:
        lines += pc["readings"]
        for m in ms["checks"]:
            lines += m["readings"]
    body.append(readings(lines))
    body.append(f'<section class="block"><h2>Alerts</h2>'
                f'{alert_items(alerts, can_ack=can_ack, back=f"/dashboard/nodes/{node}")}</section>')
    for product, pc, ms in blocks:
        cards = [chart_card(f"{product}: weekly defect rate vs network", figures.p_chart_svg(n),
                            n["reading"] or "Within the limits around the network rate.",
                            flagged=bool(n["reading"]), test_id=f"p-chart-{product}") for n in pc["nodes"]]
        for m in ms["checks"]:
            if m["chart"]:
                cards.append(chart_card(f"{product}: {m['check']['label']} (weekly means)",
                                        figures.xbar_svg(m["chart"], m["check"], m["chart"].get("weeks")),
                                        m["readings"][0] if m["readings"] else "In control.",
                                        flagged=bool(m["readings"]), test_id=f"measure-{product}-{m['check']['id']}"))
        body.append(f'<section class="block"><h2><a href="/dashboard/products/{esc(product)}">{esc(product)}</a>'
                    f'</h2><div class="grid small">{"".join(cards)}</div></section>')
    lot_rows = "".join(f'<li><a href="/dashboard/lots/{lot["id"]}">{esc(lot["code"])}</a> '
                       f'<span class="meta">{esc(lot["created_at"][:10])}</span></li>' for lot in lots)
    body.append(f'<section class="card block"><h2>Recent lots</h2><ul>{lot_rows}</ul></section>')
    return "".join(body)


def lot_page(data: dict[str, Any]) -> str:
    lot = data["lot"]
    body = [f'<h1>Lot {esc(lot["code"])}</h1><p class="sub">{esc(lot["product"])} at '
            f'<a href="/dashboard/nodes/{esc(lot["node"])}">{esc(lot["node"])}</a> · {data["n"]} units, '
            f'{data["defects"]} failed, {data["reviews"]} for review</p>', readings([data["reading"]])]
    cards = []
    for s in data["measurements"]:
        c = s["check"]
        cap = (f"{s['outside_spec']} of {len(s['values'])} values outside the specification."
               if s["outside_spec"] else f"All {len(s['values'])} values within the specification.")
        if s["chart"]:
            cards.append(chart_card(f"{c['label']} ({c['unit']}), unit by unit", figures.xbar_svg(s["chart"], c, None),
                                    cap, flagged=bool(s["outside_spec"])))
    if cards:
        body.append(f'<div class="grid small">{"".join(cards)}</div>')
    rows = "".join(
        f'<tr><td>{esc(u["unit"])}</td><td>{esc(u["captured_at"][:16].replace("T", " "))}</td>'
        f'<td><span class="tag {"bad" if u["verdict"] == "fail" else "warn" if u["verdict"] == "review" else "ok"}">'
        f'{esc(u["verdict"])}</span></td><td>{esc(", ".join(u["failed"]))}</td><td>{esc(u["technician"])}</td>'
        f'<td class="num">{u["standard_version"]}</td></tr>' for u in data["units"])
    body.append('<section class="card block"><h2>Units</h2><div class="table-wrap"><table><thead><tr><th>Unit</th>'
                '<th>Captured (UTC)</th><th>Verdict</th><th>Failed checks</th><th>Technician</th>'
                f'<th class="num">Standard</th></tr></thead><tbody>{rows}</tbody></table></div></section>')
    return "".join(body)


def alerts_page(open_alerts: Sequence[dict[str, Any]], done: Sequence[dict[str, Any]], *, can_ack: bool) -> str:
    return (f'<h1>Alerts</h1><p class="sub">Raised when a new record breaks a control-chart rule or a node leaves '
            f'the funnel limits. Acknowledge with what was found or done; the alert and the comment stay on '
            f'record.</p><section class="block"><h2>Open ({len(open_alerts)})</h2>'
            f'{alert_items(open_alerts, can_ack=can_ack, back="/dashboard/alerts")}</section>'
            f'<section class="block"><h2>Acknowledged</h2>{alert_items(done, can_ack=False, back="")}</section>')


def login_page(error: str | None = None, next_url: str = "/dashboard") -> str:
    err = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    return (f'<section class="card login"><h1>Sign in to the dashboard</h1>{err}'
            '<p class="meta">Paste a manager or auditor token (from <code>qc tokens create --role manager</code>). '
            'It is kept in a cookie for this site only.</p>'
            '<form method="post" action="/dashboard/login">'
            f'<input type="hidden" name="next" value="{esc(next_url)}">'
            '<label for="token">Token</label><input id="token" name="token" type="password" autocomplete="off" '
            'required spellcheck="false"><p><button type="submit">Sign in</button></p></form></section>')


def report_document(product: str, body: str, *, generated: str) -> str:
    """A self-contained HTML report (inline CSS, inline SVG: opens offline and prints to PDF)."""
    header = (f'<p class="meta">Kipimo quality report · {esc(product)} · generated {esc(generated)} UTC. '
              'Charts and readings are the ones the live dashboard shows for the same filters.</p>')
    return layout(f"Quality report: {product}", header + body, inline_css=True)

"""Schemathesis against the app's own ``/openapi.json``, in-process (ASGI, no network): no 5xx, and every
answer is one the document promises (status code documented, content type, body schema, headers; 405 with
``Allow`` for a method a path lacks), for every role.

One freshly initialised SQLite database (``qc init``: the shipped standards and models, a node) plus the
test standard, two submissions and an alert; then, per role (technician, manager, auditor, admin, no token)
and per operation: a call on the stored objects with a valid body, schemathesis's boundary values of every
parameter (its coverage phase), and ``KIPIMO_FUZZ_EXAMPLES`` generated cases, some that fit the schema and
some that do not. Derandomised: every run sends the same requests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.hypothesis.builder import HypothesisTestConfig, HypothesisTestMode, create_test
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from qc.standards import parse_standard
from service.cli.init import initialise
from service.core.auth import create_token
from service.core.clock import FrozenClock
from service.core.context import ServiceContext, open_context
from service.core.submissions import record_submission
from service.http.app import create_app
from service.settings import Settings
from service.storage import repository as repo
from service.storage.orm import Alert
from tests.clock import TEST_NOW
from tests.integration.support import TEST_STANDARD, jpeg, record

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.fuzz

# Fuzzed cases per operation and role, on top of schemathesis's boundary values (its coverage phase). CI sets
# 200 (about 5 minutes of one core); the default keeps a plain `pytest` run short.
EXAMPLES = int(os.environ.get("KIPIMO_FUZZ_EXAMPLES", "10"))
ROLES = ("technician", "manager", "auditor", "admin", "anonymous")
# Not negative_data_rejection: the token is added to every case, so a case "without its Authorization header"
# still carries one, and a query value schemathesis calls an array is sent as the string it reads as.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, unsupported_method]
NODE = "node-a"


@dataclass
class Fuzzed:
    app: Any
    ctx: ServiceContext
    schema: Any
    tokens: dict[str, str | None]
    known: dict[str, Any]  # ids of stored objects, for the cases that reach them


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, _sqlite_template: Path) -> Iterator[Fuzzed]:
    root = tmp_path_factory.mktemp("fuzz")
    db = root / "kipimo.sqlite3"
    shutil.copyfile(_sqlite_template, db)
    settings = Settings(data_dir=root / "data", database_url=f"sqlite:///{db}", checklists_dir=REPO_ROOT / "checklists",
                        models_dir=REPO_ROOT / "models", vision=False, frozen_time=TEST_NOW - dt.timedelta(days=3))
    initialise(settings, by="fuzz", node=NODE)  # `qc init --node node-a`, three days before the suite's now
    settings = settings.model_copy(update={"frozen_time": None})
    ctx = open_context(settings, clock=FrozenClock(TEST_NOW))
    then = TEST_NOW - dt.timedelta(days=3)
    with ctx.db.write_session() as session:
        tokens: dict[str, str | None] = {
            role: create_token(session, actor="fuzz", role=role, name=f"fuzz {role}", now=then,
                               node=NODE if role == "technician" else None)[0]
            for role in ROLES if role != "anonymous"
        }
        repo.publish_standard(session, standard=parse_standard(TEST_STANDARD, source="test"), by="fuzz", now=then)
    tokens["anonymous"] = None
    stored = [record_submission(ctx, record=record(**extra), photos={"top": jpeg(64, 48, seed=i)}, now=TEST_NOW,
                                node=NODE).body
              for i, extra in enumerate([{}, {"answers": {"diameter": 11.0, "clean": True, "colour": "blue"}}])]
    with ctx.db.write_session() as session:
        sub = repo.get_submission(session, id=stored[0]["id"])
        assert sub is not None and sub.lot_id is not None
        alert = Alert(key="fuzz", kind="rule", rule="western-electric-1", product_id=sub.product_id,
                      node_id=sub.node_id, message="a point beyond the 3-sigma limit", detail={}, created_at=TEST_NOW)
        session.add(alert)
        session.flush()
        known = {"product": "test-widget", "version": 1, "submission_id": sub.id, "slot": "top",
                 "sha256": stored[0]["photos"][0]["sha256"], "lot_id": sub.lot_id, "alert_id": alert.id,
                 "next_version": 2}
    app = create_app(settings, context=ctx)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    try:
        yield Fuzzed(app, ctx, schema, tokens, known)
    finally:
        shutdown_lifespans()  # schemathesis keeps each app's lifespan (the outbox worker) running until asked
        ctx.close()


def _operations(schema: Any) -> list[Any]:
    """Every operation, or those KIPIMO_FUZZ_ONLY names (e.g. "GET /api/v1/submissions", comma-separated)."""
    only = {label.strip() for label in os.environ.get("KIPIMO_FUZZ_ONLY", "").split(",") if label.strip()}
    return [op for op in (result.ok() for result in schema.get_all_operations()) if not only or op.label in only]


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


# max_examples counts the fuzzing phase only; the coverage phase adds its boundary values before it
SETTINGS = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=False,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))


def _fuzz(schema: Any, operation: Any, token: str | None) -> int:
    """Schemathesis's phases on one operation, as its pytest plugin runs them: examples, coverage (boundary
    values of every parameter), then fuzzing in both modes (cases that fit the schema and cases that do not).
    Returns the number of cases sent."""
    sent = 0

    @SETTINGS
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(headers=_headers(token), checks=CHECKS)

    config = HypothesisTestConfig(project=schema.config, modes=list(HypothesisTestMode), settings=SETTINGS,
                                  explicit_settings=SETTINGS)
    create_test(operation=operation, test_func=run, config=config)()
    return sent


def _known_case(operation: Any, known: dict[str, Any], token: str | None) -> None:
    """The operation called on stored objects, with a valid body (generated ones rarely are)."""
    path = {name: value for name, value in known.items() if "{" + name + "}" in operation.path} or None
    kwargs: dict[str, Any] = {}
    if operation.path.endswith("/acknowledge"):
        case = operation.Case(path_parameters=path, body={"comment": "nozzle replaced"})
    elif operation.path.endswith("/decision"):  # the known record passed: 409 for those who may decide
        case = operation.Case(path_parameters=path, body={"decision": "fail", "reason": "burr on the edge"})
    elif operation.label == "POST /api/v1/standards":
        document = yaml.safe_load(TEST_STANDARD) | {"version": known["next_version"]}
        known["next_version"] += 1
        case = operation.Case(body=document, media_type="application/json")
    elif operation.label == "POST /api/v1/submissions":  # the photo as a file part (the record, a text part)
        case = operation.Case(media_type="multipart/form-data")
        kwargs["files"] = [("record", (None, json.dumps(record()), "application/json")),
                           ("top", ("top.jpg", jpeg(64, 48), "image/jpeg"))]
    else:
        query = {"product": known["product"]} if operation.path.endswith("/measurements") else None
        case = operation.Case(path_parameters=path, query=query)
    case.call_and_validate(headers=_headers(token), checks=CHECKS, **kwargs)


@pytest.mark.parametrize("role", ROLES)
def test_no_operation_answers_5xx_or_off_its_documented_schema(role: str, fuzzed: Fuzzed,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    token = fuzzed.tokens[role]
    failures: dict[str, str] = {}
    counts: dict[str, str] = {}
    for operation in _operations(fuzzed.schema):
        try:
            _known_case(operation, fuzzed.known, token)
            started = time.perf_counter()
            sent = _fuzz(fuzzed.schema, operation, token)
            counts[operation.label] = f"{sent} in {time.perf_counter() - started:.1f} s"
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every operation's failures
            failures[operation.label] = str(exc)[:3000]
    with capsys.disabled():
        print(f"\n[fuzz {role}] cases per operation: " + json.dumps(counts))
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


# What each operation can refuse, read off the routes by hand (service/http/routes/*.py): every route checks
# its URL (422); a token (401, and 429 after repeated bad ones); a role gate (403); a lookup by path or by
# filter (404); a body (400 unreadable, 413 too large); a conflicting record or version (409); a photo (415);
# a busy decoder (503).
TOKEN = {401, 422, 429}
DOCUMENTED = {
    "GET /api/v1/health": {200, 422, 503},
    "GET /api/v1/me": {200} | TOKEN,
    "GET /api/v1/standards": {200} | TOKEN,
    "POST /api/v1/standards": {200, 201, 400, 403, 409, 413} | TOKEN,
    "GET /api/v1/standards/{product}": {200, 404} | TOKEN,
    "GET /api/v1/standards/{product}/versions/{version}": {200, 404} | TOKEN,
    "GET /api/v1/submissions.csv": {200, 403} | TOKEN,
    "POST /api/v1/submissions": {200, 201, 400, 403, 409, 413, 415, 503} | TOKEN,
    "GET /api/v1/submissions": {200} | TOKEN,
    "GET /api/v1/submissions/{submission_id}": {200, 404} | TOKEN,
    "GET /api/v1/photos/{sha256}": {200, 404} | TOKEN,
    "GET /api/v1/submissions/{submission_id}/photos/{slot}": {200, 404} | TOKEN,
    "GET /api/v1/submissions/{submission_id}/photos/{slot}/overlay": {200, 404} | TOKEN,
    **{f"GET /api/v1/analytics/{chart}": {200, 403, 404} | TOKEN
       for chart in ("overview", "rates", "p-chart", "pareto", "measurements", "lots/{lot_id}")},
    "GET /api/v1/alerts": {200, 403, 404} | TOKEN,
    "POST /api/v1/alerts/{alert_id}/acknowledge": {200, 400, 403, 404, 413} | TOKEN,
    "GET /api/v1/reviews": {200} | TOKEN,
    "POST /api/v1/reviews/{submission_id}/decision": {201, 400, 403, 404, 409, 413} | TOKEN,
}


def test_the_openapi_document_lists_each_refusal_with_the_one_error_body(fuzzed: Fuzzed) -> None:
    document = fuzzed.app.openapi()
    listed = {f"{method.upper()} {path}": op["responses"] for path, ops in document["paths"].items()
              for method, op in ops.items()}
    assert {label: {int(code) for code in responses} for label, responses in listed.items()} == DOCUMENTED
    error_body = {"$ref": "#/components/schemas/ErrorOut"}
    for label, responses in listed.items():
        for code, response in responses.items():
            if 400 <= int(code) < 500:
                assert response["content"]["application/json"]["schema"] == error_body, (label, code)
        if "429" in responses:
            assert "Retry-After" in responses["429"]["headers"], label
    assert "HTTPValidationError" not in document["components"]["schemas"]  # FastAPI's 422 body, never sent

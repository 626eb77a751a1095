"""The full path with vision on: a shipped standard, a photo that shows no calibration card."""

from __future__ import annotations

from service.cli.init import InitReport, publish_shipped_standards, register_shipped_models, shipped_standards
from service.storage import repository as repo
from tests.integration.support import auth, jpeg, passing_answers, record, upload


def test_photo_without_card_gets_every_check_and_a_review_verdict(make_client, seed, ctx, settings):
    register_shipped_models(ctx, by="test", report=InitReport())  # a standard may name only registered models
    publish_shipped_standards(ctx, shipped_standards(settings.checklists_dir), by="test", report=InitReport())
    with ctx.db.session() as session:
        visor = repo.standard_from_row(repo.current_standard(session, product="face-shield-visor"))
    answers = passing_answers(visor)
    slot = visor.photos[0]
    client = make_client(vision=True)
    r = upload(client, seed.tech_a, record(product="face-shield-visor", answers=answers),
               {slot.id: jpeg(2400, 1800, seed=4)})
    assert r.status_code == 201, r.text
    body = r.json()
    # every item, then per slot: the photo itself (kind photo, id = the slot's), then its checks
    expected_ids = [i.id for i in visor.items] + [x for p in visor.photos for x in (p.id, *(c.id for c in p.checks))]
    assert [x["check_id"] for x in body["results"]] == expected_ids
    photo_checks = [x for x in body["results"] if x["kind"] != "item"]
    # No card in the picture: nothing can be measured, so no photo check may pass or fail...
    assert photo_checks and {x["status"] for x in photo_checks} == {"inconclusive"}
    # ...and every item passes, so the record goes to review rather than pass or fail.
    assert {x["status"] for x in body["results"] if x["kind"] == "item"} <= {"pass", "not_applicable"}
    assert body["verdict"] == "review"
    overlay_url = body["photos"][0]["overlay_url"]
    assert overlay_url  # the vision stack draws an overlay for every inspected photo
    overlay = client.get(overlay_url, headers=auth(seed.tech_a))
    assert overlay.status_code == 200 and overlay.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(overlay_url, headers=auth(seed.tech_b)).status_code == 404

"""The content-addressed photo store and its garbage collector."""

from __future__ import annotations

import hashlib
import os

import pytest

from service.storage.store import PhotoStore
from tests.clock import TEST_NOW
from tests.integration.support import jpeg, record, stored_blobs, upload


def test_put_is_content_addressed_and_idempotent(tmp_path):
    store = PhotoStore(tmp_path / "photos")
    data = b"kipimo" * 1000
    sha = hashlib.sha256(data).hexdigest()
    assert store.put(data) == sha
    assert store.path(sha) == tmp_path / "photos" / sha[:2] / sha[2:4] / sha
    assert store.read(sha) == data
    assert store.put(data) == sha
    assert list(store.iter_blobs()) == [(sha, store.path(sha))]
    assert not any((tmp_path / "photos" / "tmp").iterdir())  # no temp file left behind


def test_path_refuses_non_hashes(tmp_path):
    with pytest.raises(ValueError):
        PhotoStore(tmp_path).path("../../etc/passwd")


def _age(path, seconds: float) -> None:
    old = TEST_NOW.timestamp() - seconds  # files written now by the test are younger than TEST_NOW: kept
    os.utime(path, (old, old))


def test_gc_removes_only_old_unreferenced_files(tmp_path):
    store = PhotoStore(tmp_path)
    kept, orphan, young = (store.put(bytes([i]) * 100) for i in range(3))
    for sha in (kept, orphan):
        _age(store.path(sha), 7200)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    stale_tmp = tmp_path / "tmp" / "abandoned.upload"
    stale_tmp.write_bytes(b"half")
    _age(stale_tmp, 7200)
    dry = store.gc({kept}, now=TEST_NOW, min_age_s=3600, dry_run=True)
    assert dry.removed == [orphan, "tmp/abandoned.upload"] and store.exists(orphan)
    report = store.gc({kept}, now=TEST_NOW, min_age_s=3600)
    assert report.removed == [orphan, "tmp/abandoned.upload"]
    assert report.kept == 1 and report.skipped_young == 1
    assert store.exists(kept) and store.exists(young) and not store.exists(orphan) and not stale_tmp.exists()


def test_storing_an_old_orphan_again_protects_it_from_gc(tmp_path):
    store = PhotoStore(tmp_path)
    sha = store.put(b"photo of a crashed upload")
    _age(store.path(sha), 7200)
    assert store.put(b"photo of a crashed upload") == sha  # the phone retries the same photo
    report = store.gc(set(), now=TEST_NOW, min_age_s=3600)  # its row has not committed yet
    assert report.removed == [] and store.exists(sha)


def test_gc_keeps_every_photo_a_record_references(client, seed, ctx):
    from service.storage.repository import referenced_blobs

    body = upload(client, seed.tech_a, record(), {"top": jpeg(seed=5)}).json()
    orphan = ctx.store.put(b"left by a crash between write and commit")
    for _sha, path in ctx.store.iter_blobs():
        _age(path, 7200)
    with ctx.db.session() as session:
        refs = referenced_blobs(session)
    ctx.store.gc(refs, now=ctx.now(), min_age_s=60)
    assert stored_blobs(ctx) == {body["photos"][0]["sha256"]}
    assert orphan not in stored_blobs(ctx)

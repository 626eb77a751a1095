"""The one place the service asks ``inspection`` about a submitted photo.

Take the photo decoded once, strictly and at the size the slot's checks need
(``service.core.decoding.decode_for_slot``, within the process's decode memory
budget), run the quality gate, measure on the card and run the slot's models
(``inspection.pipeline``). The overlay is drawn afterwards, from the results
``qc.evaluate`` gave the slot's checks (``PhotoInspection.draw_overlay``). A model that a
standard names but that is not installed yields no ``ModelResult`` (the check
becomes inconclusive in ``qc.evaluate``); a model whose file does not match its
card's hash is refused (``ModelHashMismatch`` propagates).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from inspection.images import DecodedPhoto
from inspection.models import LoadedModel, ModelRegistry
from inspection.overlay import encode_png, render_overlay
from inspection.pipeline import InspectionResult, inspect_decoded
from inspection.quality import QualityLimits
from qc.errors import ModelNotInstalled
from qc.evaluate import CheckResult
from qc.findings import PhotoFindings
from service.core.decoding import decode_for_slot
from service.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhotoInspection:
    """One inspected photo: findings for ``qc.evaluate``, and what its overlay is drawn on."""

    findings: PhotoFindings
    result: InspectionResult = field(repr=False)
    checks: tuple[object, ...] = ()

    def draw_overlay(self, results: Sequence[CheckResult]) -> bytes:
        """The annotated PNG, coloured by ``results`` (the evaluated results of this slot's checks).

        Drawn on the few overlay threads: OpenCV keeps a font cache of about 6 MB in every thread that
        draws text, which the server's 40 request threads would otherwise each keep for good.
        """
        return _overlay_threads().submit(
            lambda: encode_png(render_overlay(self.result, checks=self.checks, results=results))
        ).result()


@lru_cache(maxsize=1)
def _overlay_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(min(8, os.cpu_count() or 1), thread_name_prefix="kipimo-overlay")


@lru_cache(maxsize=8)
def model_registry(models_dir: Path, threads: int) -> ModelRegistry:
    return ModelRegistry(models_dir, threads=threads)


def slot_models(slot: object, settings: Settings) -> list[LoadedModel]:
    """The installed models the slot's model checks name (missing ones are skipped)."""
    registry = model_registry(Path(settings.models_dir), settings.onnx_threads)
    models: list[LoadedModel] = []
    for check in getattr(slot, "checks", ()):
        if getattr(check, "kind", None) != "model":
            continue
        try:
            models.append(registry.get(check.model))
        except ModelNotInstalled as exc:
            _warn_once(str(exc))
    return models


@lru_cache(maxsize=64)
def _warn_once(message: str) -> None:
    """Say once per process that a model is missing; every record already says so in its result."""
    log.warning("%s", message)


def inspect_photo(data: bytes, slot: object, *, settings: Settings,
                  decoded: DecodedPhoto | None = None) -> PhotoInspection:
    """Decode and inspect one photo for ``slot`` (a ``qc.standards.PhotoSlot``).

    ``decoded``: the caller's ``decode_for_slot(data, slot, ...)`` (decode once). Raises
    ``qc.errors.ImageRejected`` subclasses for files that are not usable images.
    """
    checks = tuple(getattr(slot, "checks", ()))
    card = bool(getattr(slot, "card", True))
    photo = decoded if decoded is not None else decode_for_slot(data, slot, settings=settings)
    res = inspect_decoded(
        photo,
        str(slot.id),  # type: ignore[attr-defined]
        card=card,
        limits=QualityLimits.from_slot(slot),
        measure=card and any(getattr(c, "kind", None) == "dimension" for c in checks),
        models=slot_models(slot, settings),
    )
    return PhotoInspection(findings=res.findings, result=res, checks=checks)

"""One photo in, findings out: decode -> card -> quality gate -> measure -> models.

The same function serves the service (``service/core/vision.py``), the offline CLI
(``qc inspect``) and the benchmarks. It returns the findings (plain values
for ``qc.evaluate``) together with the arrays the overlay is drawn on once the
findings have been evaluated (``inspection.overlay``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from inspection.budget import MemoryBudget
from inspection.card import CardDetection, detect_card
from inspection.images import DEFAULT_MAX_PIXELS, DecodedPhoto, ImageInfo, decode_photo, decode_reduction, probe_image
from inspection.measure import MeasureError, PartMeasurement, measure_part, rectify
from inspection.models import LoadedModel, ModelOutput
from inspection.quality import DEFAULT_LIMITS, QualityLimits, assess_quality
from qc.findings import PhotoFindings

__all__ = ["InspectionResult", "inspect_bytes", "inspect_decoded", "inspect_image"]

log = logging.getLogger(__name__)

_MODEL_VIEW_PX_PER_MM = 4.0  # same view as measurement's


@dataclass
class InspectionResult:
    findings: PhotoFindings
    image: np.ndarray  # the decoded photo (possibly reduced)
    detection: CardDetection | None = None
    part: PartMeasurement | None = None
    model_view: np.ndarray | None = None  # what the models saw (rectified area or photo)
    model_outputs: list[ModelOutput] = field(default_factory=list)


def inspect_image(image: np.ndarray, slot: str, *, card: bool = True,
                  limits: QualityLimits = DEFAULT_LIMITS, measure: bool = True,
                  models: Sequence[LoadedModel] = (), pixels: int | None = None) -> InspectionResult:
    """Inspect a decoded BGR photo for one photo slot (``pixels``: full size if reduced)."""
    det = detect_card(image) if card else None
    # judged for this slot's checks: the part's edges when measured, its surface for models
    quality = assess_quality(image, det, limits, card=card, pixels=pixels, measure=measure, models=bool(models))
    res = InspectionResult(PhotoFindings(slot=slot, quality=quality), image, det)
    extra: dict = {}
    if det is not None and det.found:
        extra["card"] = {"id": det.layout.card_id if det.layout else None,
                         "markers": det.markers_found, "px_per_mm": round(det.px_per_mm, 3),
                         "reprojection_px": round(det.reprojection_px, 3),
                         "tilt_deg": round(det.tilt_deg, 2)}
    if not quality.usable:
        res.findings = PhotoFindings(slot=slot, quality=quality, extra=extra)
        return res
    error = None
    measurements: tuple = ()
    if card and measure and det is not None:
        try:
            res.part = measure_part(image, det)
            measurements = res.part.measurements
            extra["rectified_px_per_mm"] = round(res.part.px_per_mm, 3)
        except MeasureError as exc:
            error = str(exc)
    if models:
        if card and det is not None:
            view = res.part.rectified if res.part is not None else \
                rectify(image, det, min(_MODEL_VIEW_PX_PER_MM, det.px_per_mm))[0]
        else:
            view = image
        res.model_view = view
        res.model_outputs = [m.run(view) for m in models]
    res.findings = PhotoFindings(slot=slot, quality=quality, measurements=measurements,
                                 models=tuple(o.result for o in res.model_outputs),
                                 error=error, extra=extra)
    return res


def inspect_decoded(photo: DecodedPhoto, slot: str, *, card: bool = True, limits: QualityLimits = DEFAULT_LIMITS,
                    measure: bool = True, models: Sequence[LoadedModel] = ()) -> InspectionResult:
    """Inspect a photo decoded by ``decode_photo`` (judged on its full size when decoded reduced)."""
    return inspect_image(photo.image, slot, card=card, limits=limits, measure=measure, models=models,
                         pixels=photo.pixels)


def inspect_bytes(data: bytes, slot: str, *, card: bool = True, limits: QualityLimits = DEFAULT_LIMITS,
                  measure: bool = True, models: Sequence[LoadedModel] = (),
                  max_pixels: int = DEFAULT_MAX_PIXELS, info: ImageInfo | None = None,
                  budget: MemoryBudget | None = None) -> InspectionResult:
    """Decode (at reduced size when only models will look) and inspect.

    ``info``: the caller's ``probe_image(data)``, so the header is read once per photo.
    ``budget``: the decode memory budget (``inspection.budget``), if the caller has one.
    Raises ``qc.errors.ImageRejected`` subclasses for unusable files.
    """
    info = info if info is not None else probe_image(data)
    photo = decode_photo(data, max_pixels=max_pixels, reduce=decode_reduction(info.width, info.height, card=card),
                         info=info, budget=budget)
    return inspect_decoded(photo, slot, card=card, limits=limits, measure=measure, models=models)

"""The model card (``card.yaml`` beside ``model.onnx``): one frozen pydantic model, read the same way by
every reader (the runner, ``qc init``, ``qc score``) and checked by the trainer before it writes one.

Schema and meaning in models/README.md. The card is a discriminated union on ``task`` (anomaly,
classification, detection), and its ``input`` one on ``resize`` (``scale`` needs ``factor`` and
``multiple``; the others ``height`` and ``width``), so every rule is a field's type and a bad card
lists all its problems at once, each naming the field, what it expects and what it got.

Extra keys: refused, at every level. A card decides verdicts; a misspelt key (``treshold``) that
silently fell back to a default would change them without a word. Everything people write for
people (where the data came from, how it was trained, what was measured) goes in the free-form
``training``, ``provenance`` and ``validation`` mappings, which are kept and never interpreted, so
cards from older trainers (whose free-form sections differ) still load; every key a Kipimo trainer
has written outside them is declared here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from qc.errors import ModelError, ModelHashMismatch, ModelNotInstalled, Problem

__all__ = ["AnomalyCard", "AnomalyOutput", "ClassifierCard", "ClassifierOutput", "DetectorCard", "DetectorOutput",
           "Level", "ModelCard", "Nms", "ScaleInput", "SizedInput", "check_file", "file_sha256", "parse_card",
           "read_card"]

TASKS = ("anomaly", "classification", "detection")
_Resize = Literal["stretch", "letterbox", "tiles", "scale"]
_Positive = Annotated[float, Field(gt=0, strict=True)]  # strict: a number, not the text "8"


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _field_error(field: str, reason: str) -> PydanticCustomError:
    """An error a model validator raises about one of its fields (the problem then names that field)."""
    return PydanticCustomError("card_field", reason, {"field": field})


class _Input(_Part):
    name: str = ""  # input tensor; "" = the model's first input
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    color: Literal["rgb", "bgr", "gray"] = "rgb"
    scale: _Positive = 255.0  # x = pixel / scale, then (x - mean) / std per channel
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    @field_validator("mean", "std", mode="before")
    @classmethod
    def _one_for_every_channel(cls, v: Any) -> Any:
        return (v,) if isinstance(v, int | float) and not isinstance(v, bool) else v

    @model_validator(mode="after")
    def _per_channel(self) -> _Input:
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, self.channels):
                raise _field_error(name, f"give 1 or {self.channels} numbers for color {self.color}; "
                                         f"got {len(values)}")
        if 0.0 in self.std:
            raise _field_error("std", f"must not be 0; got {list(self.std)}")
        return self

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    @property
    def channel_mean(self) -> tuple[float, ...]:
        return self.mean * self.channels if len(self.mean) == 1 else self.mean

    @property
    def channel_std(self) -> tuple[float, ...]:
        return self.std * self.channels if len(self.std) == 1 else self.std


class SizedInput(_Input):
    """``stretch`` / ``letterbox`` / ``tiles``: the model takes ``height`` x ``width`` (the tile size for tiles)."""

    resize: _Resize = "stretch"  # "scale" never lands here (the discriminator sends it to ScaleInput)
    height: Annotated[StrictInt, Field(gt=0)]
    width: Annotated[StrictInt, Field(gt=0)]
    batch: Literal["dynamic", "1"] = "dynamic"  # dynamic: tiles run as one batch; 1: one at a time

    @field_validator("batch", mode="before")
    @classmethod
    def _batch_as_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class ScaleInput(SizedInput):
    """``scale``: every photo times ``factor`` (aspect kept), reflect-padded to a multiple of ``multiple``."""

    resize: Literal["scale"]
    factor: _Positive
    multiple: Annotated[StrictInt, Field(gt=0)]
    height: StrictInt = 0  # unused
    width: StrictInt = 0


def _resize_tag(v: Any) -> str:
    resize = v.get("resize") if isinstance(v, Mapping) else getattr(v, "resize", None)
    return "scale" if resize == "scale" else "sized"


CardInput = Annotated[Annotated[ScaleInput, Tag("scale")] | Annotated[SizedInput, Tag("sized")],
                      Discriminator(_resize_tag)]


class Level(_Part):
    map: Annotated[str, Field(min_length=1)]  # output tensor of one pyramid view
    cell: _Positive  # input pixels per map cell, to tell the photo's cells from the padding


class AnomalyOutput(_Part):
    format: Literal["anomaly-score-map"]
    score: Annotated[str, Field(min_length=1)]  # the image-score output
    map: str | None = None  # the anomaly-map output
    levels: tuple[Level, ...] = ()  # score = the sum of these maps' peaks over the photo

    @model_validator(mode="after")
    def _levels_need_the_map(self) -> AnomalyOutput:
        if self.levels and not self.map:
            raise _field_error("levels", "needs output.map (the photo's extent); got no map")
        return self


class ClassifierOutput(_Part):
    format: Literal["logits", "probabilities"]
    score: str | None = None  # the class scores; default: the first output


class DetectorOutput(_Part):
    format: Literal["yolov8"]
    score: str | None = None  # the predictions; default: the first output


class Nms(_Part):
    iou: Annotated[float, Field(ge=0, le=1)] = 0.45
    confidence: Annotated[float, Field(ge=0, le=1)] = 0.25


class ModelCard(_Part):
    """What every card has; ``AnomalyCard``, ``ClassifierCard`` and ``DetectorCard`` fix the task."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]  # what standards cite as name@version
    version: StrictInt
    task: str
    file: str = "model.onnx"
    input: CardInput
    output: AnomalyOutput | ClassifierOutput | DetectorOutput
    threshold: float | None = None  # anomaly: score >= threshold means defect
    labels: tuple[str, ...] = ()  # class names in output order
    nms: Nms = Nms()
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]  # of the ONNX file, checked on every load
    training: dict[str, Any] | None = None  # free-form, for people
    provenance: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None

    @field_validator("sha256", mode="before")
    @classmethod
    def _lower_hex(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class AnomalyCard(ModelCard):
    task: Literal["anomaly"]
    output: AnomalyOutput


class ClassifierCard(ModelCard):
    task: Literal["classification"]
    output: ClassifierOutput
    labels: Annotated[tuple[str, ...], Field(min_length=1)]


class DetectorCard(ModelCard):
    task: Literal["detection"]
    output: DetectorOutput
    labels: Annotated[tuple[str, ...], Field(min_length=1)]


def _task_tag(v: Any) -> str | None:
    task = v.get("task") if isinstance(v, Mapping) else getattr(v, "task", None)
    return task if task in TASKS else None


_TASK_MESSAGE = "must be anomaly, classification or detection"
_CARD: TypeAdapter[AnomalyCard | ClassifierCard | DetectorCard] = TypeAdapter(Annotated[
    Annotated[AnomalyCard, Tag("anomaly")] | Annotated[ClassifierCard, Tag("classification")]
    | Annotated[DetectorCard, Tag("detection")],
    Discriminator(_task_tag, custom_error_type="card_task", custom_error_message=_TASK_MESSAGE),
])
_TAGS = {*TASKS, "scale", "sized"}  # union tags pydantic puts into an error's location


_NEEDS = {  # what a missing field is for, in the words of models/README.md
    "input.factor": "resize: scale multiplies every photo by a factor > 0",
    "input.multiple": "resize: scale pads to a multiple (an integer > 0)",
    "input.height": "the height the model takes (resize: stretch, letterbox or tiles)",
    "input.width": "the width the model takes (resize: stretch, letterbox or tiles)",
    "output.score": "the output tensor with the image score",
    "labels": "the class names, in output order",
}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(error: Any, doc: Mapping[str, Any]) -> Problem:
    loc = [str(x) for x in error["loc"] if str(x) not in _TAGS]
    kind = error["type"]
    if kind == "card_task":
        return Problem("task", f"{_TASK_MESSAGE}; got {_shown(doc.get('task'))}")
    if kind == "card_field":
        return Problem(".".join([*loc, error["ctx"]["field"]]), error["msg"])
    if kind == "missing":
        where = ".".join(loc)
        return Problem(where, f"required: {_NEEDS[where]}" if where in _NEEDS else "required")
    if kind == "extra_forbidden":
        return Problem(".".join(loc), "unknown key (see the card schema in models/README.md; notes for people go "
                                      "under provenance)")
    return Problem(".".join(loc), f"{error['msg']}; got {_shown(error['input'])}")


def parse_card(doc: Any, *, source: str = "card.yaml") -> ModelCard:
    """Validate a card document (as YAML loads it); a bad one raises ``ModelError`` listing every problem."""
    if not isinstance(doc, Mapping):
        raise ModelError(f"{source}: a model card must be a mapping, got {type(doc).__name__}")
    try:
        return _CARD.validate_python(dict(doc))
    except ValidationError as exc:
        raise ModelError(f"{source}: invalid model card", [_problem(e, doc) for e in exc.errors()]) from None


def read_card(model_dir: Path | str) -> ModelCard:
    """The card of a model folder."""
    path = Path(model_dir) / "card.yaml"
    if not path.is_file():
        raise ModelNotInstalled(f"no card.yaml in {model_dir}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ModelError(f"{path}: not valid YAML ({exc})") from None
    return parse_card(doc, source=str(path))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_file(card: ModelCard, path: Path) -> str:
    """The SHA-256 of the model file, which must be the card's; a mismatch raises ``ModelHashMismatch``."""
    digest = file_sha256(path)
    if digest != card.sha256:
        raise ModelHashMismatch(
            f"{card.ref}: {path.name} has SHA-256 {digest[:16]}..., the card says "
            f"{card.sha256[:16]}...; refusing a model file its card does not describe"
        )
    return digest

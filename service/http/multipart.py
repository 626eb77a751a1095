"""A streaming multipart/form-data reader that keeps parts in memory.

Starlette's form parser spools every file part above 1 MB to a temporary file
and reads it back; a submission's photos are needed in memory anyway (hash,
probe, store), so this reader feeds the body straight from the socket into
python-multipart and collects each part as bytes. It costs about a third of
the spooling parser on a 3 MB photo (see bench/ingest.py). The request body
size limit is enforced upstream (``service.http.app.BodySizeLimit``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from qc.errors import InvalidInput, Problem

__all__ = ["Part", "read_multipart"]


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytearray = field(default_factory=bytearray)


async def read_multipart(content_type: str, body: AsyncIterator[bytes], *, max_parts: int) -> list[Part]:
    """Parse a multipart body; raise ``InvalidInput`` (field ``body``) when it is malformed."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInput("malformed multipart body", [Problem("content-type", "multipart boundary missing")])
    parts: list[Part] = []
    headers: dict[bytes, bytes] = {}
    header_field = bytearray()
    header_value = bytearray()
    current: Part | None = None
    problems: list[str] = []

    def on_part_begin() -> None:
        headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        nonlocal current
        disposition, options = parse_options_header(headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if disposition != b"form-data" or name is None:
            problems.append("a part lacks 'Content-Disposition: form-data; name=...'")
            name = b""
        filename = options.get(b"filename")
        ctype = headers.get(b"content-type")
        current = Part(name=name.decode("utf-8", "replace"),
                       filename=filename.decode("utf-8", "replace") if filename is not None else None,
                       content_type=ctype.decode("latin-1") if ctype else None)
        if len(parts) >= max_parts:
            problems.append(f"more than {max_parts} parts")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if current is not None:
            current.data.extend(data[start:end])

    def on_part_end() -> None:
        nonlocal current
        if current is not None and len(parts) < max_parts:
            parts.append(current)
        current = None

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    try:
        async for chunk in body:
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidInput("malformed multipart body", [Problem("body", str(exc))]) from None
    if current is not None:
        problems.append("the body ends inside a part (truncated upload?)")
    if not parts and not problems:
        problems.append("no parts found (wrong boundary?)")
    if problems:
        raise InvalidInput("malformed multipart body", [Problem("body", p) for p in problems])
    return parts

"""Streaming ``multipart/form-data``: the one file part goes straight to a blob, never to memory.

FastAPI's ``UploadFile``/``Form`` read (or spool) the whole body before the handler runs, so a
size cap could only be checked after the fact. Here python-multipart's low-level
``MultipartParser`` runs over the request's byte stream: its (synchronous) callbacks only queue
events, and after each chunk the queue is drained asynchronously; file bytes are written to a
``BlobWriter`` as they arrive. Every check happens as soon as its input is known:

- a ``Content-Length`` beyond the cap (plus ``FORM_OVERHEAD``) is refused before reading a byte;
- an unknown or repeated field, or a bad file name, is refused when that part's headers end;
- a field value is checked when the field ends (so a bad ``purpose`` sent before the file
  stops the request before the file is read);
- the file passing ``max_file_bytes``, or the body passing the cap plus ``FORM_OVERHEAD``
  (chunked bodies), is a 413 at that chunk: the partial blob is removed and nothing more is read.

On success the blob is committed under its (server-generated) key; on any failure it is removed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import anyio
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from assistd.errors import APIError, InvalidRequestError, UnknownParameterError
from assistd.storage.base import BlobTooLargeError, BlobWriter

# Room for the boundaries, part headers and small text fields around the file.
FORM_OVERHEAD = 64 * 1024
# Text fields are short enumerations and numbers.
MAX_FIELD_BYTES = 4096
# Write to the blob in pieces of at least this size (fewer thread hops).
_FLUSH_BYTES = 1 << 20

_PART_BEGIN, _HEADER_FIELD, _HEADER_VALUE, _HEADER_END, _HEADERS_DONE, _DATA, _PART_END, _END = range(8)


@dataclass(slots=True)
class FilePart:
    filename: str | None
    content_type: str | None
    size: int


@dataclass(slots=True)
class MultipartForm:
    fields: dict[str, str] = field(default_factory=dict)
    file: FilePart | None = None


@dataclass(frozen=True, slots=True)
class FormSpec:
    """What one endpoint accepts.

    ``check_filename`` and ``check_field`` raise ``APIError``s; ``too_large`` builds the 413.
    """

    file_field: str
    text_fields: frozenset[str]
    max_file_bytes: int
    too_large: Callable[[], APIError]
    check_filename: Callable[[str | None], None] | None = None
    check_field: Callable[[str, str], None] | None = None
    hint: str = ""


def parse_disposition(value: str) -> tuple[str, dict[str, str]]:
    """``form-data; name="file"; filename="a \\"b\\".txt"`` -> ``("form-data", {...})``.

    Quoted strings keep every character except the escapes ``\\"`` and ``\\\\`` (so a file name's
    ``/``, ``\\`` or control characters reach the caller's checks unchanged; python-multipart's own
    helper strips Windows paths to their last component). RFC 5987 ``name*=`` parameters are
    ignored, as RFC 7578 forbids them in form data.
    """
    semi = value.find(";")
    dtype = (value if semi < 0 else value[:semi]).strip().lower()
    params: dict[str, str] = {}
    n = len(value)
    i = n if semi < 0 else semi + 1
    while i < n:
        eq = i
        while eq < n and value[eq] not in "=;":
            eq += 1
        key = value[i:eq].strip().lower()
        if eq >= n or value[eq] == ";":
            i = eq + 1
            continue
        j = eq + 1
        while j < n and value[j] in " \t":
            j += 1
        if j < n and value[j] == '"':
            j += 1
            buf: list[str] = []
            while j < n and value[j] != '"':
                if value[j] == "\\" and j + 1 < n and value[j + 1] in '"\\':
                    j += 1
                buf.append(value[j])
                j += 1
            if j >= n:
                raise ValueError("unterminated quoted string")
            val = "".join(buf)
            j = value.find(";", j)
            j = n if j < 0 else j
        else:
            k = value.find(";", j)
            k = n if k < 0 else k
            val = value[j:k].strip()
            j = k
        if key and "*" not in key:
            params.setdefault(key, val)
        i = j + 1
    return dtype, params


def malformed(detail: str) -> InvalidRequestError:
    return InvalidRequestError(f"Could not parse the multipart/form-data body: {detail}.")


def _boundary(content_type: str | None, hint: str) -> bytes:
    ctype, params = parse_options_header(content_type or "")
    if ctype != b"multipart/form-data":
        shown = content_type.split(";", 1)[0].strip() if content_type else "none"
        raise InvalidRequestError(
            f"This endpoint expects a multipart/form-data body, but the request's Content-Type is '{shown}'.{hint}"
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise malformed("the Content-Type header has no boundary")
    return boundary


class _Reader:
    def __init__(self, spec: FormSpec, open_writer: Callable[[], BlobWriter]) -> None:
        self.spec = spec
        self.open_writer = open_writer
        self.form = MultipartForm()
        self.events: list[tuple[int, bytes]] = []
        self.writer: BlobWriter | None = None
        self.ended = False
        self.seen: set[str] = set()
        # Current part.
        self.headers: dict[str, bytes] = {}
        self.hname = bytearray()
        self.hvalue = bytearray()
        self.name: str | None = None
        self.is_file = False
        self.text = bytearray()
        self.pending = bytearray()
        self.file_size = 0

    def callbacks(self) -> dict[str, Callable[..., None]]:
        ev = self.events

        def mark(kind: int) -> Callable[[], None]:
            return lambda: ev.append((kind, b""))

        def data(kind: int) -> Callable[[bytes, int, int], None]:
            return lambda buf, start, end: ev.append((kind, buf[start:end]))

        return {
            "on_part_begin": mark(_PART_BEGIN),
            "on_header_field": data(_HEADER_FIELD),
            "on_header_value": data(_HEADER_VALUE),
            "on_header_end": mark(_HEADER_END),
            "on_headers_finished": mark(_HEADERS_DONE),
            "on_part_data": data(_DATA),
            "on_part_end": mark(_PART_END),
            "on_end": mark(_END),
        }

    async def drain(self) -> None:
        events = self.events[:]
        self.events.clear()
        for kind, data in events:
            if kind == _DATA:
                await self._data(data)
            elif kind == _HEADER_FIELD:
                self.hname += data
            elif kind == _HEADER_VALUE:
                self.hvalue += data
            elif kind == _HEADER_END:
                self.headers[bytes(self.hname).decode("latin-1").strip().lower()] = bytes(self.hvalue).strip()
                self.hname.clear()
                self.hvalue.clear()
            elif kind == _PART_BEGIN:
                self.headers.clear()
                self.name = None
                self.is_file = False
                self.text.clear()
            elif kind == _HEADERS_DONE:
                self._start_part()
            elif kind == _PART_END:
                await self._end_part()
            elif kind == _END:
                self.ended = True

    def _start_part(self) -> None:
        raw = self.headers.get("content-disposition")
        if raw is None:
            raise malformed("a part has no Content-Disposition header")
        try:
            dtype, params = parse_disposition(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise malformed("a Content-Disposition header is not valid UTF-8") from None
        except ValueError:
            raise malformed("a Content-Disposition header is malformed") from None
        name = params.get("name")
        if dtype != "form-data" or not name:
            raise malformed("every part must be 'form-data' with a name")
        spec = self.spec
        if name != spec.file_field and name not in spec.text_fields:
            raise UnknownParameterError(name)
        if name in self.seen:
            raise InvalidRequestError(f"Duplicate parameter: '{name}' was given more than once.", param=name)
        self.seen.add(name)
        self.name = name
        self.is_file = name == spec.file_field
        if self.is_file:
            filename = params.get("filename")
            if spec.check_filename is not None:
                spec.check_filename(filename)
            ctype = self.headers.get("content-type")
            self.form.file = FilePart(filename, ctype.decode("latin-1") if ctype else None, 0)
            self.writer = self.open_writer()

    async def _data(self, data: bytes) -> None:
        if self.name is None:
            return
        if not self.is_file:
            self.text += data
            if len(self.text) > MAX_FIELD_BYTES:
                raise InvalidRequestError(
                    f"Invalid '{self.name}': the value is too long (at most {MAX_FIELD_BYTES} bytes).", param=self.name
                )
            return
        self.file_size += len(data)
        if self.file_size > self.spec.max_file_bytes:
            raise self.spec.too_large()
        self.pending += data
        if len(self.pending) >= _FLUSH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self.pending and self.writer is not None:
            chunk = bytes(self.pending)
            self.pending.clear()
            await self.writer.write(chunk)

    async def _end_part(self) -> None:
        if self.name is None:
            return
        if self.is_file:
            await self._flush()
            assert self.form.file is not None
            self.form.file.size = self.file_size
        else:
            try:
                value = bytes(self.text).decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequestError(
                    f"Invalid '{self.name}': the value is not valid UTF-8.", param=self.name
                ) from None
            if self.spec.check_field is not None:
                self.spec.check_field(self.name, value)
            self.form.fields[self.name] = value
        self.name = None

    async def abort(self) -> None:
        if self.writer is not None:
            # Shielded: a cancelled request (client gone) must still remove its partial blob.
            with anyio.CancelScope(shield=True):
                await self.writer.abort()


async def read_multipart(
    content_type: str | None,
    content_length: str | None,
    body: AsyncIterator[bytes],
    spec: FormSpec,
    open_writer: Callable[[], BlobWriter],
) -> MultipartForm:
    """Parse the form, streaming ``spec.file_field`` into ``open_writer()`` (committed on success).

    Raises ``APIError`` (400 malformed/invalid, 413 too large); the blob is then gone. The body
    is not read past the point of failure.
    """
    budget = spec.max_file_bytes + FORM_OVERHEAD
    if content_length is not None and content_length.strip().isdigit() and int(content_length) > budget:
        raise spec.too_large()
    boundary = _boundary(content_type, spec.hint)
    reader = _Reader(spec, open_writer)
    try:
        parser = MultipartParser(boundary, reader.callbacks())  # type: ignore[arg-type]
    except FormParserError as exc:
        raise malformed(str(exc).rstrip(".")) from None
    total = 0
    try:
        try:
            async for chunk in body:
                if not chunk:
                    continue
                total += len(chunk)
                if total > budget:
                    raise spec.too_large()
                try:
                    parser.write(chunk)
                except FormParserError:
                    raise malformed("the body does not follow the multipart format") from None
                await reader.drain()
                if reader.ended:
                    break
            parser.finalize()
            await reader.drain()
        finally:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                await aclose()
        if not reader.ended:
            raise malformed("the body ended before the closing boundary")
        if reader.writer is not None:
            await reader.writer.commit()
    except BlobTooLargeError:
        await reader.abort()
        raise spec.too_large() from None
    except ClientDisconnect:
        # Nobody will read the answer; an APIError keeps it out of the server-error log.
        await reader.abort()
        raise InvalidRequestError("The client disconnected before the request body was complete.") from None
    except BaseException:
        await reader.abort()
        raise
    return reader.form

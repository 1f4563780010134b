"""One function per file format; each returns text or raises (ParseError or anything, wrapped by the caller)."""

from __future__ import annotations

import codecs
import io
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from assistd.retrieval.parsing import PAGE_BREAK, ParsedDocument, ParseError

if TYPE_CHECKING:
    from bs4 import Tag

# ---------------------------------------------------------------------------------------------- text

_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Code pages charset-normalizer may choose from. Its full list includes EBCDIC and other rarities
# that "decode" binary junk or plain Latin text into nonsense; real text files are one of these.
CODE_PAGES: Final = [
    "utf_8",
    "cp1252",
    "latin_1",
    "iso8859_15",
    "cp1250",
    "cp1251",
    "cp1253",
    "cp1254",
    "cp1257",
    "koi8_r",
    "shift_jis",
    "euc_jp",
    "gb18030",
    "big5",
    "euc_kr",
]
_SAMPLE: Final = 64 * 1024
# C0 controls other than \t \n \v \f \r and ESC: text files practically never contain them.
_CONTROL: Final = bytes(b for b in range(32) if b not in (9, 10, 11, 12, 13, 27))
_NEWLINES = re.compile(r"\r\n?")


def _utf16_without_bom(sample: bytes) -> str | None:
    """UTF-16 text without a BOM: ASCII-range characters leave a NUL in every other byte."""
    if len(sample) < 4 or len(sample) % 2:
        return None
    even, odd = sample[0::2], sample[1::2]
    half = len(sample) // 2
    if odd.count(0) > 0.6 * half and even.count(0) < 0.05 * half:
        return "utf-16-le"
    if even.count(0) > 0.6 * half and odd.count(0) < 0.05 * half:
        return "utf-16-be"
    return None


def _finish(text: str) -> str:
    return _NEWLINES.sub("\n", text).replace("\x00", "")


def decode_text(data: bytes, *, html: bool = False) -> str:
    """Bytes of a text or code file -> str. BOMs win; then strict UTF-8; then UTF-16 without BOM; then
    charset-normalizer over :data:`CODE_PAGES`. Binary data (NULs, control bytes) is ``invalid_file``."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _finish(data[len(bom) :].decode(encoding))
            except UnicodeDecodeError:
                raise ParseError(
                    "invalid_file", f"The file starts with a {encoding} byte-order mark but is not {encoding}."
                ) from None
    sample = data[:_SAMPLE]
    utf16 = _utf16_without_bom(sample)
    if utf16 is not None:
        try:
            return _finish(data.decode(utf16))
        except UnicodeDecodeError:
            pass
    if b"\x00" in sample or sum(sample.count(c) for c in _CONTROL) > 0.01 * len(sample) + 1:
        raise ParseError("invalid_file", "The file appears to be binary, not text.")
    try:
        return _finish(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    if html:
        declared = re.search(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", sample, re.IGNORECASE)
        if declared:
            try:
                return _finish(data.decode(declared.group(1).decode("ascii")))
            except (LookupError, UnicodeDecodeError):
                pass
    western = _as_western(data)
    if western is not None:
        return _finish(western)
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=CODE_PAGES, steps=10, chunk_size=1024).best()
    if best is None:
        raise ParseError("invalid_file", "The file's text encoding could not be determined (is it binary?).")
    return _finish(str(best))


# Non-ASCII characters that Western European text uses besides letters (cp1252's punctuation and signs).
_WESTERN_SIGNS: Final = frozenset("‘’‚“”„–—…€•°©®™«»§¶·×÷£¥¢¡¿ªº±\xa0")


def _as_western(data: bytes) -> str | None:
    """The text as cp1252 if it reads like Western European text, the most common legacy encoding.

    charset-normalizer is weak on short texts in these languages (it picks cp1250 or mac_roman for
    plain French). Text in another single-byte code page decoded as cp1252 gives itself away: mostly
    non-ASCII letters (Cyrillic, Greek) or stray signs such as ``³`` and ``¹`` (Polish).
    """
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    letters = non_ascii_letters = odd = non_ascii = 0
    for ch in text:
        if ch.isalpha():
            letters += 1
            if ord(ch) > 127:
                non_ascii_letters += 1
                non_ascii += 1
        elif ord(ch) > 127:
            non_ascii += 1
            if ch not in _WESTERN_SIGNS:
                odd += 1
    if letters == 0 or non_ascii_letters > 0.4 * letters or odd > 0.1 * non_ascii:
        return None
    return text


# ---------------------------------------------------------------------------------------------- html

_BLOCK: Final = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "tfoot",
        "thead",
        "tr",
        "ul",
    }
)
_DROP: Final = frozenset({"script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "head"})
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_BREAK = "\x00"  # paragraph marker while walking (NULs were stripped from the input)


def html_text(markup: str) -> str:
    """Visible text: scripts/styles dropped, headings and block elements as paragraphs, ``<br>`` as a
    line break, list items as ``- `` lines, table cells joined by `` | ``. The ``<title>`` leads."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    parts: list[str] = []
    _walk(soup, parts)
    text = "".join(parts)
    paragraphs = []
    for block in text.split(_BREAK):
        lines = [_SPACES.sub(" ", line).strip() for line in block.split("\n")]
        joined = "\n".join(line for line in lines if line)
        if joined:
            paragraphs.append(joined)
    if title and (not paragraphs or paragraphs[0] != title):
        paragraphs.insert(0, title)
    return "\n\n".join(paragraphs)


def _walk(node: Any, parts: list[str]) -> None:
    from bs4.element import Comment, Doctype, NavigableString, ProcessingInstruction

    for child in node.children:
        if isinstance(child, (Comment, Doctype, ProcessingInstruction)):
            continue
        if isinstance(child, NavigableString):
            parts.append(_SPACES.sub(" ", str(child)))
            continue
        tag: Tag = child
        name = (tag.name or "").lower()
        if name in _DROP:
            continue
        if name == "br":
            parts.append("\n")
            continue
        if name == "pre":
            parts.append(_BREAK)
            parts.append(tag.get_text())
            parts.append(_BREAK)
            continue
        if name == "tr":  # one line per row, cells joined by " | "
            cells = []
            for cell in tag.find_all(("td", "th"), recursive=False):
                inner: list[str] = []
                _walk(cell, inner)
                cells.append(_SPACES.sub(" ", "".join(inner).replace(_BREAK, " ")).strip())
            parts.append("\n" + " | ".join(cells) + "\n")
            continue
        block = name in _BLOCK
        if block:
            parts.append(_BREAK)
        if name == "li":
            parts.append("- ")
        _walk(tag, parts)
        if block:
            parts.append(_BREAK)


# ----------------------------------------------------------------------------------------------- pdf


def pdf(data: bytes) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                reader.decrypt("")
                _ = reader.pages[0] if len(reader.pages) else None
            except (FileNotDecryptedError, PdfReadError, NotImplementedError) as exc:
                raise ParseError("invalid_file", "The PDF is encrypted.") from exc
        pages = list(reader.pages)
    except ParseError:
        raise
    except PdfReadError as exc:
        raise ParseError("invalid_file", f"The PDF could not be read: {exc}") from exc
    if not pages:
        raise ParseError("invalid_file", "The PDF has no pages.")
    texts: list[str] = []
    for page in pages:
        try:
            page_text = page.extract_text() or ""
        except (PdfReadError, KeyError, ValueError, TypeError, AttributeError, IndexError):
            page_text = ""  # one broken page does not lose the others
        texts.append(_finish(page_text).strip())
    text, offsets = _join_pages(texts)
    return ParsedDocument(text=text, pages=len(pages), page_offsets=offsets)


def _join_pages(texts: list[str]) -> tuple[str, list[int]]:
    offsets = []
    position = 0
    for i, page_text in enumerate(texts):
        if i:
            position += len(PAGE_BREAK)
        offsets.append(position)
        position += len(page_text)
    return PAGE_BREAK.join(texts), offsets


# ---------------------------------------------------------------------------------------------- docx

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def docx(data: bytes) -> str:
    import docx as python_docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = python_docx.Document(io.BytesIO(data))
    body = document.element.body
    parts: list[str] = []

    def table_lines(table: Table) -> Iterator[str]:
        for row in table.rows:
            cells = []
            for cell in row.cells:
                inner = [p.text for p in cell.paragraphs if p.text.strip()]
                for nested in cell.tables:
                    inner.extend(table_lines(nested))
                cells.append(" ".join(inner).strip())
            # Merged cells repeat: keep one of each run.
            deduped = [c for i, c in enumerate(cells) if i == 0 or c != cells[i - 1]]
            if any(deduped):
                yield " | ".join(deduped)

    for child in body.iterchildren():
        if child.tag == f"{_W}p":
            text = Paragraph(child, document).text
            if text.strip():
                parts.append(text)
        elif child.tag == f"{_W}tbl":
            lines = list(table_lines(Table(child, document)))
            if lines:
                parts.append("\n".join(lines))
    return _finish("\n\n".join(parts))


# ---------------------------------------------------------------------------------------------- pptx


def pptx(data: bytes) -> ParsedDocument:
    from pptx import Presentation

    presentation = Presentation(io.BytesIO(data))
    slides: list[str] = []
    for slide in presentation.slides:
        parts = [t for t in _shape_texts(slide.shapes) if t.strip()]
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                parts.append("Notes: " + notes.text.strip())
        slides.append(_finish("\n\n".join(parts)).strip())
    if not slides:
        raise ParseError("invalid_file", "The presentation has no slides.")
    text, offsets = _join_pages(slides)
    return ParsedDocument(text=text, pages=len(slides), page_offsets=offsets)


def _shape_texts(shapes: Any) -> Iterator[str]:
    for shape in shapes:
        if getattr(shape, "shape_type", None) is not None and hasattr(shape, "shapes"):  # group
            yield from _shape_texts(shape.shapes)
            continue
        if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            yield shape.text_frame.text
        if getattr(shape, "has_table", False) and shape.has_table:
            rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in shape.table.rows]
            yield "\n".join(r for r in rows if r.strip(" |"))


# ----------------------------------------------------------------------------------------------- doc

_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def doc(data: bytes, path: Path | None) -> str:
    """Word 97-2003 through antiword (Debian package ``antiword``), if installed."""
    antiword = shutil.which("antiword")
    if antiword is None:
        raise ParseError(
            "unsupported_file",
            ".doc files need antiword, which is not installed on this server "
            "(Debian/Ubuntu: `sudo apt-get install antiword`; no restart needed).",
        )
    if not data.startswith(_OLE_MAGIC):
        raise ParseError("invalid_file", "The file is not a Word 97-2003 document.")
    with tempfile.TemporaryDirectory() as tmp:
        if path is None:
            path = Path(tmp) / "input.doc"
            path.write_bytes(data)
        result = subprocess.run(
            [antiword, "-m", "UTF-8.txt", "-w", "0", str(path)],
            capture_output=True,
            check=False,
            cwd=tmp,
            env={"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin", "HOME": tmp},
        )
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()[:1] or ["antiword failed"]
        raise ParseError("invalid_file", f"The Word document could not be read: {message[0][:200]}")
    text = result.stdout.decode("utf-8", "replace")
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", _finish(text))]
    return "\n\n".join(p for p in paragraphs if p)

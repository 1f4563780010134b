"""Documents of every type file_search takes, generated here (no binary fixtures in the repository).

PDFs are written by hand (a catalog, a page tree, Helvetica with WinAnsiEncoding, one content stream
per page, a correct xref table), so they need no PDF library; DOCX and PPTX use python-docx and
python-pptx. ``bench/ingest_core.py`` imports :func:`make_pdf` for its 200-page document.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence


def _pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252", "replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _assemble(objects: list[bytes]) -> bytes:
    """Objects numbered from 1 (object 1 is the catalog) -> a complete PDF file."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def _stream(content: bytes, extra: bytes = b"", *, compress: bool = True) -> bytes:
    if compress:
        content = zlib.compress(content)
        extra += b" /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n" % (len(content), extra) + content + b"\nendstream"


def make_pdf(pages: Sequence[Sequence[str]], *, image_pages: Sequence[int] = ()) -> bytes:
    """A PDF whose page i shows the lines ``pages[i]`` in 11 pt Helvetica; pages listed in
    ``image_pages`` show only an 8x8 grey image (what a scan looks like to a text extractor)."""
    n = len(pages)
    # 1 catalog, 2 page tree, 3 font, 4 image, then per page: page object, content stream.
    kids = b" ".join(b"%d 0 R" % (5 + 2 * i) for i in range(n))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        _stream(
            bytes(range(0, 256, 4)),
            b" /Type /XObject /Subtype /Image /Width 8 /Height 8 /ColorSpace /DeviceGray /BitsPerComponent 8",
        ),
    ]
    for i, lines in enumerate(pages):
        if i in image_pages:
            content = b"q 400 0 0 400 100 200 cm /Im1 Do Q"
        else:
            ops = [b"BT /F1 11 Tf 14 TL 72 740 Td"]
            for line in lines:
                ops.append(_pdf_string(line) + b" Tj T*")
            ops.append(b"ET")
            content = b"\n".join(ops)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> /XObject << /Im1 4 0 R >> >> /Contents %d 0 R >>" % (6 + 2 * i)
        )
        objects.append(_stream(content))
    return _assemble(objects)


def make_docx(paragraphs: Sequence[str], table: Sequence[Sequence[str]] = (), heading: str | None = None) -> bytes:
    import docx

    document = docx.Document()
    if heading:
        document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.add_paragraph("The end.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_pptx(slides: Sequence[tuple[str, str, str]], table: Sequence[Sequence[str]] = ()) -> bytes:
    """Slides of (title, body, speaker notes); a table on the last slide if given."""
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    layout = presentation.slide_layouts[1]  # title and content
    for title, body, notes in slides:
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    if table:
        slide = presentation.slides[len(slides) - 1]
        shape = slide.shapes.add_table(len(table), len(table[0]), Inches(1), Inches(4), Inches(6), Inches(1))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                shape.table.cell(r, c).text = value
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


def make_zip_bomb_docx(uncompressed_mb: int) -> bytes:
    """A .docx whose word/document.xml inflates to ``uncompressed_mb`` MB (a few hundred KB packed)."""
    import zipfile

    out = io.BytesIO()
    head = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
    )
    block = b"<w:p><w:r><w:t>" + b"A" * (1024 * 1024 - 40) + b"</w:t></w:r></w:p>"
    content_types = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        b'<Default Extension="xml" ContentType="application/xml"/>'
        b'<Override PartName="/word/document.xml" '
        b'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
    )
    rels = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        b'<Relationship Id="rId1" '
        b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        b'Target="word/document.xml"/></Relationships>'
    )
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("[Content_Types].xml", content_types)
        z.writestr("_rels/.rels", rels)
        with z.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(head)
            for _ in range(uncompressed_mb):
                member.write(block)
            member.write(b"</w:body></w:document>")
    return out.getvalue()

"""Parsing: every supported type from generated fixtures, bad files of each type, and the subprocess limits."""

from __future__ import annotations

import asyncio
import codecs
import io
import os
import zipfile
from pathlib import Path

import pytest

from assistd.retrieval import parsing
from assistd.retrieval.parsing import SUPPORTED_EXTENSIONS, ParseError, parse_bytes_sync, parse_file
from tests.retrieval.docgen import make_docx, make_pdf, make_pptx, make_zip_bomb_docx

WESTERN = "Le cœur a ses raisons que la raison ne connaît point. “Déjà vu” — à bientôt, naïve café, 5 €."


def parse_error(data: bytes, filename: str) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_bytes_sync(data, filename)
    return info.value


def test_supported_extensions_are_openais_list():
    assert {
        ".c", ".cpp", ".cs", ".css", ".doc", ".docx", ".go", ".html", ".java", ".js", ".json",
        ".md", ".pdf", ".php", ".pptx", ".py", ".rb", ".sh", ".tex", ".ts", ".txt",
    } == SUPPORTED_EXTENSIONS  # fmt: skip


# ------------------------------------------------------------------------------------- text and code


class TestText:
    @pytest.mark.parametrize(
        ("encoding", "prefix"),
        [
            ("utf-8", b""),
            ("utf-8", codecs.BOM_UTF8),
            ("utf-16-le", codecs.BOM_UTF16_LE),
            ("utf-16-be", codecs.BOM_UTF16_BE),
            ("utf-16-le", b""),  # no BOM: recognised by its NUL pattern
            ("cp1252", b""),
            ("latin-1", b""),
        ],
    )
    def test_western_text_in_every_encoding(self, encoding: str, prefix: bytes):
        text = WESTERN if encoding != "latin-1" else WESTERN.replace("œ", "oe").replace("“", '"').replace("”", '"')
        text = text.replace("—", "-").replace("€", "EUR") if encoding == "latin-1" else text
        doc = parse_bytes_sync(prefix + text.encode(encoding), "notes.txt")
        assert doc.text == text
        assert doc.pages is None

    @pytest.mark.parametrize(
        ("text", "encoding"),
        [
            ("Привет, как дела? Это тестовый файл на русском языке.", "cp1251"),
            ("Zażółć gęślą jaźń. Pchnąć w tę łódź jeża lub ośm skrzyń fig.", "cp1250"),
            ("Καλημέρα κόσμε, αυτό είναι ένα δοκιμαστικό αρχείο.", "cp1253"),
            ("これは日本語のテキストファイルです。検索のためのテストです。", "shift_jis"),
        ],
    )
    def test_other_legacy_code_pages(self, text: str, encoding: str):
        assert parse_bytes_sync(text.encode(encoding), "doc.md").text == text

    @pytest.mark.parametrize(
        ("filename", "source"),
        [
            ("main.py", 'def greet(name: str) -> str:\n    return f"héllo {name}"\n'),
            ("main.c", '#include <stdio.h>\nint main(void) { printf("hi\\n"); return 0; }\n'),
            ("App.java", "public class App { public static void main(String[] a) {} }\n"),
            ("run.sh", '#!/bin/sh\necho "ok"\n'),
            ("index.ts", "export const answer: number = 42;\n"),
            ("style.css", "body { color: #333; }\n"),
            ("paper.tex", "\\section{Intro} Text with $x^2$.\n"),
            ("data.json", '{"name": "assistd", "tags": ["a", "ü"]}'),
            ("README.md", "# Title\n\nSome *markdown* text.\n"),
        ],
    )
    def test_code_and_markup_files_are_text(self, filename: str, source: str):
        assert parse_bytes_sync(source.encode(), filename).text == source

    def test_windows_newlines_become_unix(self):
        assert parse_bytes_sync(b"one\r\ntwo\rthree\n", "a.txt").text == "one\ntwo\nthree\n"

    def test_binary_with_a_text_extension_is_invalid(self):
        data = bytes(range(256)) * 64
        error = parse_error(data, "photo.txt")
        assert error.code == "invalid_file"
        assert "binary" in error.message

    def test_a_png_renamed_py_is_invalid(self):
        data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(2048)
        assert parse_error(data, "script.py").code == "invalid_file"

    def test_empty_file_is_invalid(self):
        error = parse_error(b"", "empty.txt")
        assert (error.code, error.message) == ("invalid_file", "The file is empty.")

    def test_whitespace_only_is_invalid(self):
        assert parse_error(b"  \n\t\n ", "blank.md").code == "invalid_file"

    @pytest.mark.parametrize("filename", ["data.csv", "archive.zip", "image.png", "noextension", "sheet.xlsx"])
    def test_unsupported_extension(self, filename: str):
        error = parse_error(b"a,b\n1,2\n", filename)
        assert error.code == "unsupported_file"
        assert "are not supported for retrieval" in error.message

    def test_extension_is_case_insensitive(self):
        assert parse_bytes_sync(b"hello", "NOTES.TXT").text == "hello"


# ---------------------------------------------------------------------------------------------- html


class TestHTML:
    def test_visible_text_with_structure(self):
        html = """<!DOCTYPE html><html><head><title>Refund policy</title>
        <style>body { color: red }</style><script>var secret = "do not index";</script></head>
        <body><!-- a comment --><h1>Refunds</h1>
        <p>Refunds are issued
           within <b>30 days</b>.<br>Contact support.</p>
        <ul><li>Card</li><li>Bank transfer</li></ul>
        <table><tr><th>Plan</th><th>Price</th></tr><tr><td>Pro</td><td>&euro;10</td></tr></table>
        <noscript>Enable JS</noscript></body></html>"""
        text = parse_bytes_sync(html.encode(), "policy.html").text
        assert "secret" not in text
        assert "color" not in text
        assert "a comment" not in text
        assert "Enable JS" not in text
        paragraphs = text.split("\n\n")
        assert paragraphs[0] == "Refund policy"
        assert "Refunds" in paragraphs
        assert "Refunds are issued within 30 days.\nContact support." in paragraphs
        assert "- Card" in paragraphs
        assert "- Bank transfer" in paragraphs
        assert "Plan | Price\nPro | €10" in paragraphs

    def test_declared_legacy_charset(self):
        html = '<html><head><meta charset="windows-1252"></head><body><p>Déjà vu — “naïve”</p></body></html>'
        assert parse_bytes_sync(html.encode("cp1252"), "page.html").text == "Déjà vu — “naïve”"

    def test_markup_without_text_is_invalid(self):
        assert parse_error(b"<html><body><script>x()</script><img src=a.png></body></html>", "a.html").code == (
            "invalid_file"
        )


# ----------------------------------------------------------------------------------------------- pdf


class TestPDF:
    def test_pages_text_and_offsets(self):
        data = make_pdf([["Invoice 42 (paid)", "Total: 99 €"], ["Second page: terms"], ["Third page"]])
        doc = parse_bytes_sync(data, "invoice.pdf")
        assert doc.pages == 3
        assert doc.page_offsets is not None
        pages = [
            doc.text[start:end].strip()
            for start, end in zip(doc.page_offsets, [*doc.page_offsets[1:], None], strict=False)
        ]
        assert pages[0] == "Invoice 42 (paid)\nTotal: 99 €"
        assert pages[1] == "Second page: terms"
        assert pages[2] == "Third page"
        assert doc.text.count("\f") == 2

    def test_scanned_pages_are_skipped_when_others_have_text(self):
        doc = parse_bytes_sync(make_pdf([["cover text"], []], image_pages=[1]), "mixed.pdf")
        assert doc.pages == 2
        assert "cover text" in doc.text

    def test_scanned_only_pdf_is_invalid(self):
        error = parse_error(make_pdf([[], []], image_pages=[0, 1]), "scan.pdf")
        assert error.code == "invalid_file"
        assert "No text could be extracted" in error.message

    @pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
    def test_truncated_pdf_is_invalid(self, fraction: float):
        data = make_pdf([["some text here"], ["more text"]])
        assert parse_error(data[: int(len(data) * fraction)], "cut.pdf").code == "invalid_file"

    def test_not_a_pdf(self):
        assert parse_error(b"%PDF-1.4\nthis is not really a pdf", "fake.pdf").code == "invalid_file"
        assert parse_error(b"hello world", "fake.pdf").code == "invalid_file"


# ---------------------------------------------------------------------------------------------- docx


class TestDOCX:
    def test_paragraphs_and_tables_in_order(self):
        data = make_docx(
            ["First paragraph about pricing.", "Second paragraph."],
            table=[["Plan", "Price"], ["Pro", "10 €"]],
            heading="Pricing",
        )
        text = parse_bytes_sync(data, "pricing.docx").text
        assert text == (
            "Pricing\n\nFirst paragraph about pricing.\n\nSecond paragraph.\n\nPlan | Price\nPro | 10 €\n\nThe end."
        )

    def test_zip_that_is_not_a_docx(self):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            z.writestr("hello.txt", "not a word document")
        assert parse_error(out.getvalue(), "fake.docx").code == "invalid_file"

    def test_not_a_zip(self):
        assert parse_error(b"PK\x03\x04 truncated", "broken.docx").code == "invalid_file"
        assert parse_error(b"plain text", "text.docx").code == "invalid_file"

    def test_truncated_docx(self):
        data = make_docx(["Some text."])
        assert parse_error(data[: len(data) // 2], "cut.docx").code == "invalid_file"

    def test_pptx_named_docx(self):
        assert parse_error(make_pptx([("t", "b", "")]), "slides.docx").code == "invalid_file"


# ---------------------------------------------------------------------------------------------- pptx


class TestPPTX:
    def test_slides_notes_and_tables(self):
        data = make_pptx(
            [("Quarterly results", "Revenue grew 12%", "Mention the new region"), ("Roadmap", "Ship search", "")],
            table=[["Quarter", "Revenue"], ["Q1", "1.2M"]],
        )
        doc = parse_bytes_sync(data, "deck.pptx")
        assert doc.pages == 2
        assert doc.page_offsets is not None
        first = doc.text[: doc.page_offsets[1]]
        second = doc.text[doc.page_offsets[1] :]
        assert "Quarterly results" in first
        assert "Revenue grew 12%" in first
        assert "Notes: Mention the new region" in first
        assert "Roadmap" in second
        assert "Ship search" in second
        assert "Quarter | Revenue\nQ1 | 1.2M" in second

    def test_docx_named_pptx(self):
        assert parse_error(make_docx(["hello"]), "deck.pptx").code == "invalid_file"

    def test_truncated_pptx(self):
        data = make_pptx([("title", "body", "notes")])
        assert parse_error(data[: len(data) // 3], "cut.pptx").code == "invalid_file"


# ----------------------------------------------------------------------------------------------- doc


class TestDOC:
    def test_without_antiword_doc_is_unsupported(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
        monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no antiword
        error = parse_error(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1024, "old.doc")
        assert error.code == "unsupported_file"
        assert "antiword" in error.message

    def test_not_an_ole_file(self):
        assert parse_error(b"{\\rtf1 this is rtf}", "letter.doc").code == "invalid_file"

    def test_corrupt_ole_file(self):
        assert parse_error(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + os.urandom(4096), "broken.doc").code == "invalid_file"


# ------------------------------------------------------------------------------------------ subprocess


class TestParseFile:
    async def test_parses_in_a_subprocess(self, tmp_path: Path):
        path = tmp_path / "blob-1234"  # stored under a generated name; the filename is metadata
        path.write_bytes(make_pdf([["page one"], ["page two"]]))
        doc = await parse_file(path, "Report.PDF")
        assert doc.pages == 2
        assert "page one" in doc.text
        assert "page two" in doc.text

    async def test_odd_filenames(self, tmp_path: Path):
        path = tmp_path / "blob"
        path.write_bytes("grüße".encode())
        for name in ("-rf.txt", "--help.md", "a b\nc.txt", "ünï cödé.txt"):
            assert (await parse_file(path, name)).text == "grüße"

    async def test_errors_come_back_as_parse_errors(self, tmp_path: Path):
        path = tmp_path / "blob"
        path.write_bytes(make_pdf([[]], image_pages=[0]))
        with pytest.raises(ParseError) as info:
            await parse_file(path, "scan.pdf")
        assert info.value.code == "invalid_file"
        assert "No text could be extracted" in info.value.message

    async def test_unsupported_and_empty_without_a_subprocess(self, tmp_path: Path):
        path = tmp_path / "blob"
        path.write_bytes(b"")
        with pytest.raises(ParseError) as info:
            await parse_file(path, "a.txt")
        assert info.value.code == "invalid_file"
        with pytest.raises(ParseError) as info:
            await parse_file(path, "a.exe")
        assert info.value.code == "unsupported_file"

    async def test_missing_file(self, tmp_path: Path):
        with pytest.raises(ParseError) as info:
            await parse_file(tmp_path / "gone", "a.txt")
        assert info.value.code == "invalid_file"

    async def test_decompression_bomb_hits_the_memory_limit(self, tmp_path: Path):
        path = tmp_path / "bomb"
        path.write_bytes(make_zip_bomb_docx(600))  # 600 MB of XML in about 3 MB
        with pytest.raises(ParseError) as info:
            await parse_file(path, "bomb.docx", memory_mb=256, timeout=60)
        assert info.value.code == "invalid_file"
        assert "memory" in info.value.message

    async def test_slow_parse_hits_the_timeout(self, tmp_path: Path):
        path = tmp_path / "bomb"
        path.write_bytes(make_zip_bomb_docx(1500))  # far more than a second of inflating and XML parsing
        with pytest.raises(ParseError) as info:
            await parse_file(path, "bomb.docx", memory_mb=8192, timeout=1)
        assert info.value.code == "invalid_file"
        assert "took longer than 1 seconds" in info.value.message

    async def test_cancelling_kills_the_subprocess(self, tmp_path: Path):
        path = tmp_path / "bomb"
        path.write_bytes(make_zip_bomb_docx(1500))
        before = _children()
        task = asyncio.create_task(parse_file(path, "bomb.docx", memory_mb=8192, timeout=120))
        for _ in range(500):
            started = _children() - before
            if started:
                break
            await asyncio.sleep(0.01)
        assert started, "the parser subprocess never started"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not (started & _children())

    def test_the_subprocess_gets_no_secrets(self, monkeypatch: pytest.MonkeyPatch):
        monkeypatch.setenv("ASSISTD_UPSTREAM_API_KEY", "sk-secret")
        monkeypatch.setenv("ASSISTD_DATABASE_URL", "postgresql+asyncpg://u:pw@db/x")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
        env = parsing._worker_env()
        assert "sk-secret" not in env.values()
        assert not any(k.startswith(("ASSISTD_", "AWS_")) for k in env)
        assert env["PATH"] == os.environ["PATH"]


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return pids

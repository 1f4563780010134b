"""LineReader: SSE lines out of network chunks, whatever the chunk boundaries."""

from __future__ import annotations

import pytest

from assistd.llm.client import LineReader


async def _lines(chunks: list[bytes]) -> list[str]:
    async def gen():  # type: ignore[no-untyped-def]
        for c in chunks:
            yield c

    reader, out = LineReader(gen()), []
    while True:
        line = reader.next_nowait()
        if line is None:
            try:
                line = await reader.next()
            except StopAsyncIteration:
                return out
        out.append(line)


@pytest.mark.parametrize(
    "chunks",
    [
        [b'data: {"a": "\xc3\xa9"}\n\ndata: [DONE]\n\n'],
        [b'data: {"a": "\xc3', b'\xa9"}\r', b"\n\r\n", b"data: [DONE]\r\n\r\n"],  # CRLF and UTF-8 split
        [b'data: {"a": "\xc3\xa9"}\r\rdata: [DONE]\r\r'],  # bare CR endings
        [b"da", b'ta: {"a": "\xc3\xa9"}\n', b"\n", b"data: [DONE]\n"],
    ],
)
async def test_lines_whatever_the_chunks(chunks: list[bytes]) -> None:
    got = await _lines(chunks)
    assert [x for x in got if x] == ['data: {"a": "é"}', "data: [DONE]"]
    assert got.index("data: [DONE]") == 2  # the blank line between the events is kept


async def test_a_last_line_without_newline_is_kept() -> None:
    assert await _lines([b"data: x\n", b"data: y"]) == ["data: x", "data: y"]

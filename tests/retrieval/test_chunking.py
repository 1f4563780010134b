"""Chunking by tokens: exact offsets, window sizes, overlap, bounds."""

from __future__ import annotations

import itertools
import math

import pytest

from assistd.llm.tokens import get_encoding
from assistd.retrieval.chunking import ENCODING, chunk_text, count_tokens

PROSE = " ".join(
    f"Sentence {i} talks about topic {i % 7}: retrieval, chunking and embeddings work together." for i in range(600)
)
MIXED = ("Ünïcödé façade — 日本語のテキスト, emoji 😀🎉 and Кириллица. " * 400).strip()


def assert_exact(text: str, chunks):
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text


@pytest.mark.parametrize("text", [PROSE, MIXED], ids=["prose", "mixed-unicode"])
@pytest.mark.parametrize(("max_tokens", "overlap"), [(800, 400), (100, 0), (100, 50), (4096, 2048), (333, 17)])
def test_windows(text: str, max_tokens: int, overlap: int):
    chunks = chunk_text(text, max_tokens, overlap)
    n = count_tokens(text)
    step = max_tokens - overlap
    expected = 1 if n <= max_tokens else math.ceil((n - max_tokens) / step) + 1
    assert len(chunks) == expected
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert_exact(text, chunks)
    assert chunks[0].start == 0
    assert chunks[-1].end == len(text)
    assert all(c.tokens == max_tokens for c in chunks[:-1])
    assert 0 < chunks[-1].tokens <= max_tokens
    for previous, following in itertools.pairwise(chunks):
        assert following.start > previous.start
        # Consecutive windows share their overlap (and never leave a gap).
        assert following.start <= previous.end
        if overlap:
            shared = text[following.start : previous.end]
            assert abs(count_tokens(shared) - overlap) <= 3  # re-tokenising a slice may merge at the edges


def test_no_overlap_ascii_chunks_tile_the_text():
    chunks = chunk_text(PROSE, 100, 0)
    assert "".join(c.text for c in chunks) == PROSE
    for previous, following in itertools.pairwise(chunks):
        assert following.start == previous.end


def test_window_tokens_match_the_tokenizer():
    encoding = get_encoding(ENCODING)
    tokens = encoding.encode_ordinary(PROSE)
    chunks = chunk_text(PROSE, 200, 100)
    for chunk in chunks:
        first = chunk.index * 100
        assert chunk.text == encoding.decode(tokens[first : first + 200])


def test_tokens_split_inside_a_character_widen_to_whole_characters():
    # A rare CJK character or emoji is several tokens; windows of single tokens would cut inside it.
    text = "𠜎𠜱𠝹𠱓" * 200
    chunks = chunk_text(text, 100, 50)
    assert_exact(text, chunks)
    assert chunks[-1].end == len(text)
    assert all(c.text for c in chunks)


def test_short_text_is_one_chunk():
    chunks = chunk_text("Just a few words.")
    assert len(chunks) == 1
    assert (chunks[0].start, chunks[0].end, chunks[0].text) == (0, 17, "Just a few words.")
    assert chunks[0].tokens == count_tokens("Just a few words.")


@pytest.mark.parametrize("text", ["", "   ", "\n\n\f\n"])
def test_empty_text_has_no_chunks(text: str):
    assert chunk_text(text) == []


def test_lone_surrogates_keep_offsets():
    text = "before \ud800 after " * 300
    chunks = chunk_text(text, 100, 10)
    assert_exact(text, chunks)
    assert chunks[-1].end == len(text)


@pytest.mark.parametrize(
    ("max_tokens", "overlap", "message"),
    [
        (99, 0, "between 100 and 4096"),
        (4097, 0, "between 100 and 4096"),
        (800, 401, "half"),
        (100, 51, "half"),
        (800, -1, "negative"),
    ],
)
def test_bounds(max_tokens: int, overlap: int, message: str):
    with pytest.raises(ValueError, match=message):
        chunk_text(PROSE, max_tokens, overlap)


def test_bounds_are_inclusive():
    assert chunk_text(PROSE, 100, 50)
    assert chunk_text(PROSE, 4096, 2048)

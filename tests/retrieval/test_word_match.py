"""The fusion's word-coverage test (``_has_word``) answers exactly what tokenizing the text would."""

from __future__ import annotations

import random

from assistd.retrieval.index import vec_literal
from assistd.retrieval.search import _WORD, _has_word, query_terms

ALPHABET = ["tide", "tides", "moon", "_", "é", "ß", "3", "x", " ", ".", "-", "\n", "Ω", "٣", "'"]


def test_has_word_agrees_with_the_tokenizer_on_random_texts() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30))).lower()
        words = set(_WORD.findall(text))
        for term in ("tide", "tides", "moon", "x", "3", "é", "_", "moon_3", "ω"):
            assert _has_word(text, term) == (term in words), (text, term)


def test_has_word_on_a_real_question() -> None:
    text = "The tides follow the Moon; spring-tides come twice a month (tide_tables_2 list them).".lower()
    found = {t for t in query_terms("When do spring tides and neap tides happen?") if _has_word(text, t)}
    assert found == {"spring", "tides"}
    assert not _has_word(text, "tide")  # only inside tide_tables_2, one word
    assert _has_word(text, "tide_tables_2")


def test_vector_literal_keeps_seven_significant_digits() -> None:
    import numpy as np

    v = np.array([0.1234567891, -2.5, 1e-8, 0.0], dtype=np.float32)
    assert vec_literal(v) == "[" + ",".join(f"{x:.7g}" for x in v.tolist()) + "]"
    assert vec_literal(v).startswith("[0.1234568,-2.5,1e-08,0")

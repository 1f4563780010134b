"""The numpy vector index: exact below EXACT_MAX_ROWS, binary codes + exact re-scoring above."""

from __future__ import annotations

import numpy as np

from assistd.retrieval.index import EXACT_MAX_ROWS, build_matrix


def _unit(rng: np.random.Generator, n: int, dim: int = 384) -> np.ndarray:
    centres = rng.standard_normal((50, dim)).astype(np.float32)
    v = centres[rng.integers(0, 50, n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_small_store_is_exact_and_best_first() -> None:
    rng = np.random.default_rng(1)
    mat = _unit(rng, 500)
    m = build_matrix(1, np.arange(500) + 1000, [f"f{i % 7}" for i in range(500)], mat)
    assert not m.approximate
    q = mat[42]
    idx, sims = m.top(q, 10)
    exact = np.argsort(-(mat @ q))[:10]
    assert idx.tolist() == exact.tolist()
    assert list(sims) == sorted(sims, reverse=True)
    assert m.seqs[idx[0]] == 1042


def test_big_store_finds_the_neighbours_and_honours_the_mask() -> None:
    rng = np.random.default_rng(2)
    n = EXACT_MAX_ROWS + 5_000
    mat = _unit(rng, n)
    files = [f"f{i % 10}" for i in range(n)]
    m = build_matrix(1, np.arange(n), files, mat)
    assert m.approximate
    recalls = []
    for row in (3, 777, 12_345, n - 1):
        q = mat[row]
        idx, _ = m.top(q, 10)
        assert idx[0] == row  # a stored vector is its own nearest neighbour
        exact = np.argsort(-(mat @ q))[:10]
        recalls.append(len(set(idx.tolist()) & set(exact.tolist())) / 10)
    assert np.mean(recalls) >= 0.9
    # only files f0 and f1 allowed: every result is theirs, and the best allowed row is found
    ok_files = np.isin(m.file_ids, ["f0", "f1"])
    mask = ok_files[m.file_codes]
    q = mat[11]  # file f1
    idx, _ = m.top(q, 10, mask)
    assert idx[0] == 11
    assert {files[i] for i in idx} <= {"f0", "f1"}
    # a mask allowing a handful of rows: all of them, scored exactly
    few = np.zeros(n, dtype=bool)
    few[[5, 50, 500]] = True
    idx, _ = m.top(mat[50], 10, few)
    assert sorted(idx.tolist()) == [5, 50, 500] and idx[0] == 50

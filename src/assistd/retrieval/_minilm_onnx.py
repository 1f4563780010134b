"""all-MiniLM-L6-v2 on onnxruntime: the same encoder as ``_minilm``'s numpy pass, as an ONNX graph.

The graph is built in memory from the verified weights (nothing is downloaded or cached on disk):
BERT's embeddings, then per layer self-attention and the feed-forward block, post-LayerNorm, exact
(erf) GELU. onnxruntime fuses what it can (LayerNorm with the residual add, GELU with its bias) and
runs its own matrix kernels, which are faster than BLAS on the small matrices of one query.

Two precisions:

- ``fp32``: the weights as published; agrees with the numpy pass to ~1e-6.
- ``int8``: the six dense layers of each block (Q, K, V, attention output, feed-forward in and out)
  as ``DynamicQuantizeMatMul``: weights quantised once, symmetrically per output column; activations
  quantised per call. The attention products, LayerNorms, GELU and pooling stay float32. This is
  the scheme of sentence-transformers' own ``model_qint8_avx512_vnni.onnx`` for this model. Vectors
  keep a cosine of ~0.99 with the float32 ones; one query takes ~3 ms instead of ~8 ms on one core
  with AVX-512 VNNI (int8 dot products). Without VNNI, int8 products can saturate, so ``auto`` uses
  int8 only on CPUs that have it, and only for queries (see ``_minilm.resolve_runtime``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OnnxEncoder", "cpu_has_vnni", "onnx_available"]


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cpu_has_vnni() -> bool:
    """Whether the CPU has int8 dot-product instructions (AVX-512 VNNI or AVX-VNNI), on Linux."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool(flags & {"avx512_vnni", "avx_vnni"})
    return False


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``w`` (in, out) as int8 and one float32 scale per output column (symmetric, range ±127)."""
    scale = np.abs(w).max(axis=0) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale


def build_model(weights: dict[str, np.ndarray], config: dict[str, Any], precision: str) -> bytes:
    """The serialized ONNX model: inputs ``input_ids`` (int64, batch x seq) and ``mask_bias``
    (float32, batch x 1 x 1 x seq: 0 for tokens, -1e9 for padding); output ``hidden`` (batch x seq
    x hidden). ``weights``: the checkpoint's tensors, float32, as stored (dense weights out x in)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    hidden, heads, layers = config["hidden_size"], config["num_attention_heads"], config["num_hidden_layers"]
    eps = float(config["layer_norm_eps"])
    size = hidden // heads
    initializers: list[Any] = []
    nodes: list[Any] = []
    counter = [0]

    def const(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(value if value.ndim == 0 else np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], domain: str = "", **attrs: Any) -> str:
        counter[0] += 1
        out = f"t{counter[0]}"
        nodes.append(helper.make_node(op, inputs, [out], domain=domain or None, **attrs))
        return out

    def dense(x: str, prefix: str) -> str:
        w = weights[f"{prefix}.weight"].T  # (in, out)
        b = weights[f"{prefix}.bias"]
        if precision == "int8":
            q, scale = quantize_columns(w)
            zero = np.zeros(q.shape[1], dtype=np.int8)
            return node(
                "DynamicQuantizeMatMul",
                [
                    x,
                    const(f"{prefix}.wq", q),
                    const(f"{prefix}.ws", scale),
                    const(f"{prefix}.wz", zero),
                    const(f"{prefix}.b", b),
                ],
                domain="com.microsoft",
            )
        return node("Add", [node("MatMul", [x, const(f"{prefix}.w", w)]), const(f"{prefix}.b", b)])

    def layer_norm(x: str, prefix: str) -> str:
        return node(
            "LayerNormalization",
            [
                x,
                const(f"{prefix}.weight", weights[f"{prefix}.weight"]),
                const(f"{prefix}.bias", weights[f"{prefix}.bias"]),
            ],
            epsilon=eps,
            axis=-1,
        )

    const("zero", np.array([0], dtype=np.int64))
    const("one", np.array([1], dtype=np.int64))
    const("split_heads", np.array([0, 0, heads, size], dtype=np.int64))
    const("merge_heads", np.array([0, 0, hidden], dtype=np.int64))
    const("scale", np.array(1.0 / math.sqrt(size), dtype=np.float32))
    const("sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))
    const("1f", np.array(1.0, dtype=np.float32))
    const("half", np.array(0.5, dtype=np.float32))

    x = node("Gather", [const("word_embeddings", weights["embeddings.word_embeddings.weight"]), "input_ids"])
    seq = node("Gather", [node("Shape", ["input_ids"]), "one"])
    positions = node(
        "Slice", [const("position_embeddings", weights["embeddings.position_embeddings.weight"]), "zero", seq, "zero"]
    )
    x = node(
        "Add", [node("Add", [x, positions]), const("token_type", weights["embeddings.token_type_embeddings.weight"][0])]
    )
    x = layer_norm(x, "embeddings.LayerNorm")
    for i in range(layers):
        p = f"encoder.layer.{i}."

        def split(t: str) -> str:
            return node("Transpose", [node("Reshape", [t, "split_heads"])], perm=[0, 2, 1, 3])

        q = split(dense(x, f"{p}attention.self.query"))
        k = split(dense(x, f"{p}attention.self.key"))
        v = split(dense(x, f"{p}attention.self.value"))
        scores = node("Mul", [node("MatMul", [q, node("Transpose", [k], perm=[0, 1, 3, 2])]), "scale"])
        probs = node("Softmax", [node("Add", [scores, "mask_bias"])], axis=-1)
        context = node("Reshape", [node("Transpose", [node("MatMul", [probs, v])], perm=[0, 2, 1, 3]), "merge_heads"])
        x = layer_norm(node("Add", [dense(context, f"{p}attention.output.dense"), x]), f"{p}attention.output.LayerNorm")
        inner = dense(x, f"{p}intermediate.dense")
        gelu = node(
            "Mul", [node("Mul", [inner, node("Add", [node("Erf", [node("Div", [inner, "sqrt2"])]), "1f"])]), "half"]
        )
        x = layer_norm(node("Add", [dense(gelu, f"{p}output.dense"), x]), f"{p}output.LayerNorm")
    nodes.append(helper.make_node("Identity", [x], ["hidden"]))

    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("mask_bias", TensorProto.FLOAT, ["batch", 1, 1, "seq"]),
        ],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "seq", hidden])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


class OnnxEncoder:
    """An onnxruntime session over the built graph; :meth:`forward` is thread-safe."""

    def __init__(self, weights: dict[str, np.ndarray], config: dict[str, Any], precision: str, threads: int) -> None:
        import onnxruntime as ort

        self.precision = precision
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(threads, 0)  # 0: one per core
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads burn the cores the database and the event loop need (see limit_blas_threads).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(
            build_model(weights, config, precision), opts, providers=["CPUExecutionProvider"]
        )

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        bias = ((1.0 - mask.astype(np.float32)) * np.float32(-1e9))[:, None, None, :]
        out = self._session.run(["hidden"], {"input_ids": ids.astype(np.int64, copy=False), "mask_bias": bias})[0]
        return np.asarray(out, dtype=np.float32)

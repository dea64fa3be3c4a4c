"""The seeds' feature sets on corpus items, through the engine's one audio path.

Every item (a recording, or one of its augmented copies, :class:`training.seeds.leak.Item`)
is decoded, windowed, gated and featurised by the same code as ``ser analyze``:
:func:`training.features.speech_window_features`, which calls
:func:`ser_engine.dsp.core.iter_window_features` with a ``ser_engine``
:class:`~ser_engine.dsp.features.Featurizer` built from one of :data:`SEED_FEATURES`
(the seeds' sets in the one featurizer). A recording is decoded by
:func:`ser_engine.dsp.audio.iter_audio_blocks`; an augmented copy is the decoded
recording through :func:`training.seeds.systems.augment_item` (the seeds' noise, pitch,
stretch and shift), passed as one block.

A clip's *frames* are the frames of its speech windows, each frame once, in
time order (windows overlap; a frame's place in the clip is known from its
window's start, on the frame grid). A clip shorter than one window is
featurised centre-padded, as ``ser analyze`` does; only the frames that lie
inside its real samples are kept. A clip in which the gate finds no speech
has no frames and is dropped (``ser analyze`` reports "no speech").

From a clip's frames each seed model takes its *view* (as the seeds did):
``pooled`` (:func:`ser_engine.dsp.features.pool_frames`) for the decision tree
and k-NN, ``flat`` (the first ``n`` frames, zero-padded, flattened feature by
feature) for the 1D CNN and ``sequence`` (the first ``n`` frames, zero-padded)
for the CNN + BiLSTM. Views are computed in the worker processes and cached on
disk (``.npz``, no pickle) keyed by the feature configurations, the views, the
item list and the augmentation seed.

Frame parameters of the seeds' sets: librosa's defaults at 22.05 kHz (2048-point
FFT, hop 512 = 23 ms, 128 mel bands) carried to our 16 kHz audio as a 1024-point
FFT and window (64 ms) with a 25 ms hop (400 samples, a divisor of the 0.5 s
window hop, so overlapping windows share frames), 128 mel bands from 0 to 8 kHz.
A 3 s window has 118 frames; the seeds' 1D CNN reads 108 frames (2.7 s; theirs
2.5 s) of 22 features, exactly its 2376 inputs; seed 002's CNN + BiLSTM reads
174 frames of 40 MFCC (4.35 s; clips are shorter and zero-padded, as in seed 002).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.config import FeatureConfig
from ser_engine.errors import ParameterError
from training.seeds.leak import Item

__all__ = [
    "SEED_FEATURES",
    "ItemFeatures",
    "ViewSpec",
    "clip_frames",
    "featurize_seed_items",
    "items_with_speech",
    "seed_feature_config",
]

_FRAMES: dict[str, Any] = {
    "n_fft": 1024,
    "win_length": 1024,
    "hop_length": 400,
    "n_mels": 128,
    "fmin": 0.0,
    "fmax": 8000.0,
    "window_s": 3.0,
    "hop_s": 0.5,
}
SEED_FEATURES: dict[str, dict[str, Any]] = {
    "mfcc": {"features": "mfcc", "n_mfcc": 40, **_FRAMES},
    "mfcc_zcr_rms": {"features": "mfcc_zcr_rms", "n_mfcc": 20, **_FRAMES},
    "mfcc_chroma_mel": {"features": "mfcc_chroma_mel", "n_mfcc": 40, **_FRAMES},
}
"""``FeatureConfig`` fields of each seed feature set: 40 MFCC (seed 002); 20 MFCC + ZCR + RMS
(seeds 000, 003, 004: 22 per frame); 40 MFCC + 12 chroma + 128 mel (seed 001: 180 per frame)."""
_VERSION = 1


def seed_feature_config(name: str) -> FeatureConfig:
    """Return the ``ser_engine`` FeatureConfig of seed feature set ``name`` (a key of :data:`SEED_FEATURES`)."""
    if name not in SEED_FEATURES:
        raise ParameterError(f"unknown seed feature set {name!r}; known: {', '.join(SEED_FEATURES)}")
    return FeatureConfig(**SEED_FEATURES[name])


@dataclass(frozen=True)
class ViewSpec:
    """One arrangement of one feature set's clip frames, as a seed model reads it."""

    feature_set: str
    view: str
    n_frames: int | None = None

    @property
    def key(self) -> str:
        """``<set>:<view>`` or ``<set>:<view><n>``."""
        return f"{self.feature_set}:{self.view}{self.n_frames or ''}"


def clip_frames(
    windows: npt.ArrayLike, starts_s: npt.ArrayLike, *, config: FeatureConfig, duration_s: float | None = None
) -> npt.NDArray[np.float32]:
    """Return a clip's frames from its speech windows: each frame once, in time order.

    Parameters
    ----------
    windows : array_like, shape (n_windows, n_frames, n_features)
        Speech windows as :func:`training.features.speech_window_features` returns them.
    starts_s : array_like, shape (n_windows,)
        Their start times in the clip, seconds.
    config : FeatureConfig
    duration_s : float, optional
        Length of the clip. When it is shorter than one window (one centre-padded
        window), only the frames that lie inside the real samples are kept (all of
        them if none does).

    Returns
    -------
    ndarray, shape (n_clip_frames, n_features), float32
    """
    w = np.asarray(windows, dtype=np.float32)
    if w.ndim != 3:
        raise ParameterError(f"windows must be (n_windows, n_frames, n_features), got shape {w.shape}")
    if w.shape[0] == 0:
        return np.zeros((0, w.shape[2]), np.float32)
    hop, sr = config.hop_length, config.sample_rate
    if duration_s is not None and round(duration_s * sr) < config.window_samples:
        n = round(duration_s * sr)
        pad = (config.window_samples - n) // 2
        first = -(-pad // hop)
        last = (pad + n - config.n_fft) // hop  # inclusive
        return np.ascontiguousarray(w[0, first : last + 1] if last >= first else w[0])
    frames: dict[int, npt.NDArray[np.float32]] = {}
    for win, s in zip(w, np.asarray(starts_s, dtype=np.float64), strict=True):
        k0 = round(s * sr / hop)
        for j in range(win.shape[0]):
            frames.setdefault(k0 + j, win[j])
    return np.stack([frames[k] for k in sorted(frames)]).astype(np.float32)


def _fixed(frames: npt.NDArray[np.float32], n: int) -> npt.NDArray[np.float32]:
    out = np.zeros((n, frames.shape[1]), np.float32)
    m = min(n, frames.shape[0])
    out[:m] = frames[:m]
    return out


def _view(frames: npt.NDArray[np.float32], spec: ViewSpec) -> npt.NDArray[np.float32]:
    if spec.view == "pooled":
        from ser_engine.dsp.features import pool_frames

        return np.asarray(pool_frames(frames), dtype=np.float32)
    if not spec.n_frames:
        raise ParameterError(f"view {spec.key} needs n_frames")
    seq = _fixed(frames, spec.n_frames)
    if spec.view == "sequence":
        return seq
    if spec.view == "flat":
        return np.ascontiguousarray(seq.T.reshape(-1))  # each feature's series in turn (the seeds' hstack)
    raise ParameterError(f"unknown view {spec.view!r}; known: pooled, flat, sequence")


# Worker state (per process) -----------------------------------------------------
_W: dict[str, Any] = {}


def _init_worker(views: list[tuple[str, str, int | None]], seed: int, pin: bool = True) -> None:
    from ser_engine.dsp.features import Featurizer

    if pin:
        from threadpoolctl import threadpool_limits

        _W["threads"] = threadpool_limits(limits=1)  # one native thread per worker process
    specs = [ViewSpec(*v) for v in views]
    sets = sorted({s.feature_set for s in specs})
    configs = {name: seed_feature_config(name) for name in sets}
    _W.update(specs=specs, seed=seed, configs=configs, featurizers={n: Featurizer(c) for n, c in configs.items()})


def _featurize_one(job: tuple[int, Item]) -> tuple[int, dict[str, npt.NDArray[np.float32]] | None]:
    from ser_engine.dsp.audio import iter_audio_blocks
    from training.features import load_clip_audio, speech_window_features
    from training.seeds.systems import augment_item

    index, item = job
    path, copy = item.clip.path, item.copy
    configs: dict[str, FeatureConfig] = _W["configs"]
    sr = next(iter(configs.values())).sample_rate
    if copy > 0:  # the decoded recording, augmented, as one block (as training.features does)
        blocks = [augment_item(item, load_clip_audio(path, sample_rate=sr), sample_rate=sr, seed=_W["seed"])]
    else:  # decoded exactly as `ser analyze` decodes, once for every feature set
        blocks = list(iter_audio_blocks(path, sample_rate=sr))
    duration = sum(b.shape[0] for b in blocks) / sr
    per_set: dict[str, npt.NDArray[np.float32]] = {}
    for name, cfg in configs.items():
        windows, starts = speech_window_features(blocks, config=cfg, featurizer=_W["featurizers"][name])
        if windows.shape[0] == 0:
            return index, None
        per_set[name] = clip_frames(windows, starts, config=cfg, duration_s=duration)
    return index, {s.key: _view(per_set[s.feature_set], s) for s in _W["specs"]}


@dataclass
class ItemFeatures:
    """Views of a list of items.

    Attributes
    ----------
    ids : list of str
        Item ids (:attr:`training.seeds.leak.Item.id`) of the items with speech, in the order given.
    views : dict of str to ndarray
        Per :attr:`ViewSpec.key`, one row per id: ``(n, n_features)`` pooled,
        ``(n, n_features * n_frames)`` flat, ``(n, n_frames, n_features)`` sequence; float32.
    no_speech : list of str
        Ids of the items dropped because the gate found no speech in them.
    """

    ids: list[str]
    views: dict[str, npt.NDArray[np.float32]]
    no_speech: list[str]

    def rows(self, ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """Row index of each of ``ids`` (each must have speech)."""
        where = {i: k for k, i in enumerate(self.ids)}
        return np.array([where[i] for i in ids], dtype=np.int64)


def _cache_key(items: Sequence[Item], specs: Sequence[ViewSpec], seed: int) -> str:
    from training.features import GATE_CACHE_TOKEN

    payload = {
        "configs": {s: seed_feature_config(s).to_dict() for s in sorted({v.feature_set for v in specs})},
        "views": [v.key for v in specs],
        "items": [[it.clip.path, it.copy] for it in items],
        "seed": seed if any(it.copy for it in items) else None,
        "gate": GATE_CACHE_TOKEN,
        "version": _VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def featurize_seed_items(
    *,
    items: Sequence[Item],
    views: Sequence[ViewSpec],
    seed: int = 0,
    workers: int = 2,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> ItemFeatures:
    """Featurize items through the engine's audio path into the seed models' views (cached).

    Parameters
    ----------
    items : sequence of Item
        Recordings and augmented copies; ids must be unique.
    views : sequence of ViewSpec
    seed : int
        Augmentation seed of the copies (:func:`training.seeds.systems.augment_item`).
    workers : int
        Worker processes (1: in this process), each pinned to one native thread.
    cache_dir : path, optional
        Default :func:`training.features.default_cache_dir`.
    progress : bool
        Show a progress bar.

    Returns
    -------
    ItemFeatures
    """
    from tqdm import tqdm

    from training.features import default_cache_dir

    specs = list(dict.fromkeys(views))
    item_list = list(items)
    ids = [it.id for it in item_list]
    if len(set(ids)) != len(ids):
        raise ParameterError("item ids must be unique")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache / f"seeds-{_cache_key(item_list, specs, seed)}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            keep = data["speech"]
            return ItemFeatures(
                ids=[i for i, k in zip(ids, keep, strict=True) if k],
                views={s.key: data[f"view{n}"] for n, s in enumerate(specs)},
                no_speech=[i for i, k in zip(ids, keep, strict=True) if not k],
            )
    jobs = list(enumerate(item_list))
    out: list[dict[str, npt.NDArray[np.float32]] | None] = [None] * len(jobs)
    init_args = ([(s.feature_set, s.view, s.n_frames) for s in specs], seed)
    bar = tqdm(total=len(jobs), desc="seed features", unit="item", disable=not progress, mininterval=2.0)
    if workers <= 1:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            _init_worker(*init_args, pin=False)
            for job in jobs:
                i, v = _featurize_one(job)
                out[i] = v
                bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=init_args) as ex:
            for i, v in ex.map(_featurize_one, jobs, chunksize=16):
                out[i] = v
                bar.update()
    bar.close()
    keep = np.array([v is not None for v in out], dtype=bool)
    arrays = {s.key: _stack([v[s.key] for v in out if v is not None], s) for s in specs}
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f"{path.stem}.tmp.npz"
    stored: dict[str, npt.NDArray[Any]] = {"speech": keep}
    stored.update({f"view{n}": arrays[s.key] for n, s in enumerate(specs)})
    np.savez(tmp, allow_pickle=False, **stored)
    tmp.replace(path)
    return ItemFeatures(
        ids=[i for i, k in zip(ids, keep, strict=True) if k],
        views=arrays,
        no_speech=[i for i, k in zip(ids, keep, strict=True) if not k],
    )


def _stack(rows: list[npt.NDArray[np.float32]], spec: ViewSpec) -> npt.NDArray[np.float32]:
    if rows:
        return np.stack(rows).astype(np.float32)
    return np.zeros((0,), np.float32) if spec.view != "sequence" else np.zeros((0, spec.n_frames or 0, 0), np.float32)


def items_with_speech(*, features: ItemFeatures, parts: Mapping[str, Sequence[Item]]) -> dict[str, list[Item]]:
    """Each part's items without those the gate found no speech in."""
    have = set(features.ids)
    return {p: [it for it in v if it.id in have] for p, v in parts.items()}

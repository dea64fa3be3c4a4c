"""Windows and their features (log-mel, or the feature set of the config) of corpus clips, cached on disk.

One path from audio to features, shared with ``ser analyze``: a clip is decoded
by :func:`ser_engine.dsp.audio.iter_audio_blocks` and windowed, gated and featurised
by the one core, :func:`ser_engine.dsp.core.iter_window_features` (imported, never
copied), so a clip's training windows are exactly the speech windows ``ser
analyze --segments`` reports (3 s windows every 0.5 s on the 20 ms frame grid,
the final one ending up to 20 ms before the clip's end; a short clip gated on
its real samples and featurised centre-padded).
Only speech windows are kept; a clip in which the gate finds no speech has no
windows (the pipeline reports and drops it, as ``ser analyze`` reports "no
speech"). Augmented copies pass the decoded, augmented samples through the
same call. Un-normalised feature windows are cached as ``.npz`` files keyed by
the FeatureConfig (without statistics), the variant (clean or augmented copy
``k`` with its chain and seed), the gate policy and the clip list, so a second
run skips featurization.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.config import FeatureConfig
from ser_engine.dsp.audio import iter_audio_blocks, load_audio
from ser_engine.dsp.core import iter_window_features
from ser_engine.dsp.features import Featurizer
from training.corpora import Clip

__all__ = [
    "WindowSet",
    "default_cache_dir",
    "featurize_clips",
    "fit_stats",
    "gate_policy",
    "load_clip_audio",
    "speech_window_features",
]


def default_cache_dir() -> Path:
    """``$SER_CACHE_DIR`` or ``~/.cache/ser/features`` (outside the repository)."""
    env = os.environ.get("SER_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "ser" / "features"


FeatureArray = npt.NDArray[np.floating[Any]]
"""Window features as stored: float16 (log-mel) or float32 (the seeds' sets)."""


@dataclass
class WindowSet:
    """Feature windows of a list of clips.

    Attributes
    ----------
    features : ndarray, shape (n_windows, n_frames, n_features), float16 or float32
        Un-normalised features of the config's set (log-mel by default, kept as float16:
        it halves the memory and the rounding, < 0.01 in log units, is far below the
        features' spread; the seeds' sets as float32, see :func:`storage_dtype`).
    clip_index : ndarray, shape (n_windows,), int32
        Index of each window's clip in ``clips``.
    speech : ndarray, shape (n_windows,), bool
        Whether the speech gate accepts the window (all True for windows made by
        :func:`featurize_clips`, which keeps speech windows only).
    clips : list of Clip
    start_s : ndarray, shape (n_windows,), float32, optional
        Start of each window in its clip, seconds (as ``ser analyze --segments`` reports it).
    """

    features: FeatureArray
    clip_index: npt.NDArray[np.int32]
    speech: npt.NDArray[np.bool_]
    clips: list[Clip]
    start_s: npt.NDArray[np.float32] | None = None

    def windows_per_clip(self) -> npt.NDArray[np.int64]:
        """Return the number of windows of each clip, shape ``(n_clips,)``."""
        return np.bincount(self.clip_index, minlength=len(self.clips)).astype(np.int64)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def usable(self) -> npt.NDArray[np.bool_]:
        """Windows to train on / average over: speech windows, or all windows of a clip without any."""
        has_speech = np.zeros(len(self.clips), dtype=bool)
        has_speech[self.clip_index[self.speech]] = True
        return self.speech | ~has_speech[self.clip_index]

    def concat(self, other: WindowSet) -> WindowSet:
        """Return both sets in one, ``other``'s clip indices shifted after this set's clips."""
        offset = len(self.clips)
        return WindowSet(
            features=np.concatenate([self.features, other.features]),
            clip_index=np.concatenate([self.clip_index, other.clip_index + offset]).astype(np.int32),
            speech=np.concatenate([self.speech, other.speech]),
            clips=self.clips + other.clips,
            start_s=None
            if self.start_s is None or other.start_s is None
            else np.concatenate([self.start_s, other.start_s]),
        )

    def subset_clips(self, keep: npt.NDArray[np.bool_]) -> WindowSet:
        """Keep the windows of clips where ``keep`` (shape (n_clips,)) is true."""
        new_index = np.cumsum(keep) - 1
        mask = keep[self.clip_index]
        return WindowSet(
            features=self.features[mask],
            clip_index=new_index[self.clip_index[mask]].astype(np.int32),
            speech=self.speech[mask],
            clips=[c for c, k in zip(self.clips, keep, strict=True) if k],
            start_s=None if self.start_s is None else self.start_s[mask],
        )


GATE_CACHE_TOKEN = "ser_engine.analysis.iter_window_features(gate_sensitivity=0.5): speech windows only"
"""The windowing and silence policy as it enters every cache key (features, embeddings, seeds' views).

Kept byte for byte although the module it names has moved (the windows are cut by
:func:`ser_engine.dsp.core.iter_window_features`): a renamed module must not silently orphan
caches that cost half an hour to rebuild. Change it only when the windows themselves change."""


def gate_policy() -> str:
    """Name of the windowing and silence policy in use (recorded in the model's provenance)."""
    return "ser_engine.dsp.core.iter_window_features(gate_sensitivity=0.5): speech windows only"


def load_clip_audio(path: str, *, sample_rate: int) -> npt.NDArray[np.float32]:
    """Decode one file to float32 mono at ``sample_rate`` (:func:`ser_engine.dsp.audio.load_audio`)."""
    return load_audio(path, sample_rate=sample_rate).samples


def speech_window_features(
    blocks: Iterable[npt.NDArray[np.float32]], *, config: FeatureConfig, featurizer: Featurizer
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Feature frames (of the config's set) and start times of the speech windows of one clip.

    Returns
    -------
    features : ndarray, shape (n_speech_windows, n_frames, n_features), float32
    start_s : ndarray, shape (n_speech_windows,), float32
    """
    feats = [wf for wf in iter_window_features(blocks, config=config, featurizer=featurizer) if wf.speech]
    if not feats:
        return np.zeros((0, config.n_frames, config.n_features), np.float32), np.zeros(0, np.float32)
    frames = np.stack([wf.features for wf in feats if wf.features is not None]).astype(np.float32)
    return frames, np.array([wf.start_s for wf in feats], dtype=np.float32)


# Worker state (per process) -------------------------------------------------
_W: dict[str, Any] = {}


def _init_worker(config_dict: dict[str, Any], chain_spec: str | None, pin: bool = True) -> None:
    from threadpoolctl import threadpool_limits

    from training.augment import default_chain

    if pin:
        # One native thread per worker process (NumPy's BLAS would otherwise start a pool per
        # process and oversubscribe the cores); kept for the life of the worker.
        _W["threads"] = threadpool_limits(limits=1)
    cfg = FeatureConfig.from_dict(config_dict)
    _W["config"] = cfg
    _W["featurizer"] = Featurizer(cfg)
    _W["chain"] = default_chain() if chain_spec else None


def storage_dtype(config: FeatureConfig) -> type[np.floating[Any]]:
    """Return the dtype windows are kept in: float16 for log-mel, float32 for the seeds' sets.

    Log-mel values (natural log) lose < 0.01 to float16; MFCC reaches hundreds of dB and the RMS
    of quiet frames (~1e-5) is below float16's normal range, so the other sets stay float32.
    """
    return np.float16 if config.features == "logmel" else np.float32


def _featurize_one(args: tuple[int, str, int, int]) -> tuple[int, FeatureArray, npt.NDArray[np.float32]]:
    index, path, seed, variant = args
    cfg: FeatureConfig = _W["config"]
    blocks: Iterable[npt.NDArray[np.float32]]
    if variant > 0 and _W["chain"] is not None:
        rng = np.random.default_rng([seed, index, variant])
        y = load_clip_audio(path, sample_rate=cfg.sample_rate)
        blocks = [_W["chain"](y, sample_rate=cfg.sample_rate, rng=rng)]
    else:
        blocks = iter_audio_blocks(path, sample_rate=cfg.sample_rate)  # exactly as `ser analyze` decodes
    frames, start_s = speech_window_features(blocks, config=cfg, featurizer=_W["featurizer"])
    return index, frames.astype(storage_dtype(cfg)), start_s


def _cache_key(*, config: FeatureConfig, clips: Sequence[Clip], variant: int, seed: int, chain_spec: str | None) -> str:
    base = replace(config, mean=None, std=None).to_dict()
    payload = {
        "config": base,
        "variant": variant,
        "seed": seed if variant else None,
        "chain": chain_spec if variant else None,
        "gate": GATE_CACHE_TOKEN,
        "clips": [c.path for c in clips],
        "version": 3,  # 3: the final window starts on the 20 ms grid (ser_engine.dsp.core)
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def featurize_clips(
    *,
    clips: Sequence[Clip],
    config: FeatureConfig,
    variant: int = 0,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    workers: int = 2,
    desc: str = "featurize",
    progress: bool = True,
) -> WindowSet:
    """Featurize clips (clean, ``variant=0``, or augmented copy ``variant>=1``), with caching.

    Parameters
    ----------
    clips : sequence of Clip
    config : FeatureConfig
        Statistics, if any, are ignored (features are cached un-normalised).
    variant : int
        0 for the clean audio; ``k >= 1`` for the k-th augmented copy through
        :func:`training.augment.default_chain` with the generator
        ``default_rng([seed, clip_index, k])``.
    seed : int
    cache_dir : path, optional
        Defaults to :func:`default_cache_dir`; ``None`` there means default.
    workers : int
        Worker processes (1 runs in-process), each with its native thread pools
        (BLAS/OpenMP) pinned to one thread.

    Returns
    -------
    WindowSet
    """
    from training.augment import default_chain

    chain_spec = default_chain().describe() if variant else None
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = _cache_key(config=config, clips=clips, variant=variant, seed=seed, chain_spec=chain_spec)
    path = cache / f"{key}.npz"
    clip_list = list(clips)
    if path.is_file():
        with np.load(path) as data:
            return WindowSet(
                # caches written before the field's rename hold the same arrays under "log_mel"
                features=data["features"] if "features" in data else data["log_mel"],
                clip_index=data["clip_index"],
                speech=data["speech"],
                clips=clip_list,
                start_s=data["start_s"],
            )
    cfg_dict = replace(config, mean=None, std=None).to_dict()
    jobs = [(i, c.path, seed, variant) for i, c in enumerate(clip_list)]
    results: list[tuple[FeatureArray, npt.NDArray[np.float32]]] = [None] * len(jobs)  # type: ignore[list-item]
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc=desc, unit="clip", disable=not progress, mininterval=2.0)
    if workers <= 1:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):  # as in a worker process, restored afterwards
            _init_worker(cfg_dict, chain_spec, pin=False)
            for job in jobs:
                i, lm, sp = _featurize_one(job)
                results[i] = (lm, sp)
                bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(cfg_dict, chain_spec)) as ex:
            for i, lm, sp in ex.map(_featurize_one, jobs, chunksize=16):
                results[i] = (lm, sp)
                bar.update()
    bar.close()
    n_features, n_frames = config.n_features, config.n_frames
    features = np.concatenate([np.zeros((0, n_frames, n_features), storage_dtype(config))] + [r[0] for r in results])
    start_s = np.concatenate([np.zeros(0, np.float32)] + [r[1] for r in results])
    speech = np.ones(features.shape[0], dtype=bool)
    clip_index = np.concatenate(
        [np.zeros(0, np.int32)] + [np.full(r[0].shape[0], i, dtype=np.int32) for i, r in enumerate(results)]
    )
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f"{key}.tmp.npz"
    np.savez(tmp, features=features, clip_index=clip_index, speech=speech, start_s=start_s)
    tmp.replace(path)
    return WindowSet(features=features, clip_index=clip_index, speech=speech, clips=clip_list, start_s=start_s)


def fit_stats(windows: WindowSet) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-feature mean and std over the usable windows' frames (training speakers only).

    Returns
    -------
    mean, std : ndarray, shape (n_features,), float64
    """
    x = windows.features[windows.usable()]
    n_features = x.shape[-1]
    total = np.zeros(n_features)
    total_sq = np.zeros(n_features)
    count = 0
    for i in range(0, x.shape[0], 512):
        chunk = x[i : i + 512].astype(np.float64).reshape(-1, n_features)
        total += chunk.sum(axis=0)
        total_sq += (chunk**2).sum(axis=0)
        count += chunk.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-8))
    return mean, np.maximum(std, 1e-3)

"""Per-window Whisper-encoder vectors of corpus clips, cached on disk.

Every clip goes the one way ``ser analyze`` goes: :func:`training.features.featurize_clips`
gives its speech windows' log-mel frames under :data:`WHISPER_FEATURES` (Whisper's 80-band
log-mel, normalised as Whisper does), the int8 embedder
(:class:`training.whisper.embedder.Embedder`) turns each window into the time-mean of each
encoder block's output, and those vectors are kept as float16.

The cache lives under ``<cache>/embeddings/<key>/`` where ``key`` hashes the embedder file's
sha256, the feature config and the windowing policy; inside, one ``.npz`` per chunk of at most
:data:`CHUNK_CLIPS` clips of one corpus, named by the corpus and a hash of the chunk's clip
paths. A chunk is written atomically when it is complete, so a killed run resumes at the first
missing chunk and a later run (or session) with the same clips reads everything back.
Embedding runs in worker processes (spawned, each with a one-thread ONNX Runtime session), one
window per embedder call: the int8 graph quantises activations with the range of everything in a
call, so a window's vectors depend on its batch mates; alone, they are exactly what the live app
computes for that window.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.config import FeatureConfig
from ser_engine.dsp.features import Featurizer
from ser_engine.errors import ParameterError
from training.corpora import Clip
from training.features import GATE_CACHE_TOKEN, WindowSet, default_cache_dir, featurize_clips
from training.whisper.embedder import whisper_feature_config

__all__ = [
    "CHUNK_CLIPS",
    "WHISPER_FEATURES",
    "EmbedStats",
    "chunk_clips",
    "default_embedding_dir",
    "embed_clips",
    "embedding_dir",
]

WHISPER_FEATURES: FeatureConfig = whisper_feature_config()
"""Whisper's input under the project's featurizer (defined once, by
:func:`training.whisper.embedder.whisper_feature_config`): 80 Slaney mel bands 0-8 kHz of a
400-point STFT every 10 ms, ``ln(mel + 1e-10)`` normalised to ``(log10(mel) + 4) / 4`` by mean
``-4 ln 10`` and std ``4 ln 10``; 3 s windows (298 frames) every 0.5 s. The embedder's first op
clamps each window at its maximum - 2, as Whisper does."""

CHUNK_CLIPS = 2000
"""Clips of one corpus per cache file (the unit a killed run resumes from)."""
BATCH = 16
"""Windows per task sent to a worker process (each embedded alone)."""
WINDOWS_PER_CALL = 1
"""Windows per embedder call (see the module docstring)."""
CACHE_VERSION = 2

Log = Callable[[str], None]


def default_embedding_dir() -> Path:
    """``<cache root>/embeddings``: beside the feature cache (``~/.cache/ser/embeddings`` by default)."""
    return default_cache_dir().parent / "embeddings"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def embedding_dir(*, embedder_path: str | Path, config: FeatureConfig, cache_dir: str | Path | None = None) -> Path:
    """Folder of the cached vectors of one embedder file and one feature config.

    Parameters
    ----------
    embedder_path : path-like
        The embedder ONNX file; its content's sha256 enters the key.
    config : FeatureConfig
        The features fed to the embedder (statistics included: they change the input).
    cache_dir : path-like, optional
        The embeddings root (default :func:`default_embedding_dir`).

    Returns
    -------
    Path
        ``<cache_dir>/<key>`` (not created here).
    """
    payload = {
        "embedder_sha256": _sha256(Path(embedder_path)),
        "config": config.to_dict(),
        "gate": GATE_CACHE_TOKEN,
        "windows_per_call": WINDOWS_PER_CALL,
        "version": CACHE_VERSION,
    }
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]
    root = Path(cache_dir) if cache_dir is not None else default_embedding_dir()
    return root / key


def chunk_clips(clips: Sequence[Clip], *, size: int = CHUNK_CLIPS) -> list[list[int]]:
    """Split clip indices into chunks of one corpus each, at most ``size`` clips, in input order.

    Parameters
    ----------
    clips : sequence of Clip
    size : int
        Most clips per chunk (positive).

    Returns
    -------
    list of list of int
        Indices into ``clips``; every index appears once.
    """
    if size < 1:
        raise ParameterError(f"chunk size must be positive, got {size}")
    by_corpus: dict[str, list[int]] = {}
    for i, c in enumerate(clips):
        by_corpus.setdefault(c.corpus, []).append(i)
    out: list[list[int]] = []
    for idx in by_corpus.values():
        out += [idx[j : j + size] for j in range(0, len(idx), size)]
    return out


def _chunk_file(folder: Path, clips: Sequence[Clip]) -> Path:
    digest = hashlib.sha256("\n".join(c.path for c in clips).encode()).hexdigest()[:16]
    return folder / f"{clips[0].corpus}-{len(clips)}-{digest}.npz"


@dataclass
class EmbedStats:
    """What :func:`embed_clips` did.

    Attributes
    ----------
    folder : Path or None
        The cache folder used.
    chunks : int
        Chunk files making up the result.
    computed : int
        Chunks computed by this call (0 when everything came from the cache).
    reused : int
        Chunks read from the cache.
    windows_computed : int
        Windows embedded by this call.
    feature_s, embed_s : float
        Seconds spent on features and on the embedder by this call.
    files : list of Path
        The chunk files.
    """

    folder: Path | None = None
    chunks: int = 0
    computed: int = 0
    reused: int = 0
    windows_computed: int = 0
    feature_s: float = 0.0
    embed_s: float = 0.0
    files: list[Path] = field(default_factory=list)


# Worker processes ----------------------------------------------------------------------------
_W: dict[str, Any] = {}


def _embed_init(path: str) -> None:
    from ser_engine.privacy import disable_telemetry

    disable_telemetry()  # before onnxruntime is imported in this process
    from threadpoolctl import threadpool_limits

    from training.whisper.embedder import Embedder

    _W["limits"] = threadpool_limits(limits=1)
    _W["embedder"] = Embedder(path, threads=1, batch_size=WINDOWS_PER_CALL)


def _embed_batch(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.asarray(_W["embedder"](x), dtype=np.float32)


class _Runner:
    """The embedder in worker processes (``workers > 1``, spawned) or in this process."""

    def __init__(self, path: Path, *, workers: int) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._local: Any = None
        if workers > 1:
            self._pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=get_context("spawn"), initializer=_embed_init, initargs=(str(path),)
            )
        else:
            from training.whisper.embedder import Embedder

            self._local = Embedder(path, threads=1, batch_size=WINDOWS_PER_CALL)

    def map(self, batches: Iterable[npt.NDArray[np.float32]]) -> Iterator[npt.NDArray[np.float32]]:
        """Embed batches in order: each (batch, T, n_mels) -> (batch, n_blocks, d_model)."""
        if self._pool is not None:
            return self._pool.map(_embed_batch, batches)
        return (np.asarray(self._local(x), dtype=np.float32) for x in batches)

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown()


def _embed_windows(
    *, runner: _Runner, featurizer: Featurizer, features: npt.NDArray[Any], batch: int, log: Log, name: str
) -> npt.NDArray[np.float16]:
    """Normalise and embed windows in batches; (n_windows, n_blocks, d_model) float16."""
    n = features.shape[0]
    out: list[npt.NDArray[np.float16]] = []
    done, t0, next_log = 0, time.perf_counter(), 2000
    step = batch * 64  # a process pool submits all it is given: hand it a bounded slice at a time
    for s0 in range(0, n, step):
        part = features[s0 : s0 + step]
        batches = [featurizer.normalize(part[i : i + batch].astype(np.float32)) for i in range(0, len(part), batch)]
        for emb in runner.map(batches):
            out.append(emb.astype(np.float16))
            done += emb.shape[0]
        if done >= next_log:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            log(f"embed {name}: {done}/{n} windows ({rate:.0f} windows/s)")
            next_log += 2000
    return np.concatenate(out)


def embed_clips(
    *,
    clips: Sequence[Clip],
    embedder_path: str | Path,
    config: FeatureConfig = WHISPER_FEATURES,
    cache_dir: str | Path | None = None,
    feature_cache_dir: str | Path | None = None,
    workers: int = 2,
    chunk_size: int = CHUNK_CLIPS,
    batch: int = BATCH,
    log: Log = print,
    stats: EmbedStats | None = None,
) -> WindowSet:
    """Embed the speech windows of ``clips`` (cached per chunk).

    Parameters
    ----------
    clips : sequence of Clip
    embedder_path : path-like
        Embedder ONNX (input ``features`` (batch, T, n_mels), output ``block_means``
        (batch, n_blocks, d_model)).
    config : FeatureConfig
        Features of the windows (:data:`WHISPER_FEATURES`).
    cache_dir : path-like, optional
        Embeddings root (default :func:`default_embedding_dir`).
    feature_cache_dir : path-like, optional
        Feature cache of :func:`training.features.featurize_clips` (its default when None).
    workers : int
        Processes for features and for the embedder (each embedder session one thread);
        1 runs everything in this process.
    chunk_size : int
        Clips per cache file.
    batch : int
        Windows per task handed to a worker (each window is still embedded alone).
    log : callable
        Progress messages (also appended to ``progress.log`` in the cache folder).
    stats : EmbedStats, optional
        Filled with what was computed and what was reused.

    Returns
    -------
    WindowSet
        ``features`` holds the vectors, shape (n_windows, n_blocks, d_model), float16 (the
        time-mean of each block's output over the window's encoder frames); ``clip_index``
        indexes ``clips`` (clips without speech have no windows); ``start_s`` as in
        :func:`training.features.featurize_clips`.
    """
    if workers < 1 or batch < 1:
        raise ParameterError(f"workers and batch must be positive, got {workers} and {batch}")
    path = Path(embedder_path)
    if not path.is_file():
        raise ParameterError(f"{path}: embedder file not found")
    st = stats if stats is not None else EmbedStats()
    folder = embedding_dir(embedder_path=path, config=config, cache_dir=cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    st.folder = folder
    progress = folder / "progress.log"

    def say(msg: str) -> None:
        log(msg)
        with progress.open("a", encoding="utf-8") as f:
            f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")

    clip_list = list(clips)
    chunks = chunk_clips(clip_list, size=chunk_size)
    featurizer = Featurizer(config)
    runner: _Runner | None = None
    parts: list[tuple[npt.NDArray[np.float16], npt.NDArray[np.int32], npt.NDArray[np.float32]]] = []
    n_blocks_d: tuple[int, int] | None = None
    try:
        for k, idx in enumerate(chunks):
            mine = [clip_list[i] for i in idx]
            file = _chunk_file(folder, mine)
            st.files.append(file)
            if file.is_file():
                with np.load(file) as data:
                    if list(data["paths"]) != [c.path for c in mine]:
                        raise ParameterError(f"{file}: cached chunk holds other clips (delete it)")
                    emb, local, start = data["emb"], data["clip_index"], data["start_s"]
                st.reused += 1
            else:
                name = f"chunk {k + 1}/{len(chunks)} ({mine[0].corpus}, {len(mine)} clips)"
                t0 = time.perf_counter()
                w = featurize_clips(clips=mine, config=config, cache_dir=feature_cache_dir, workers=workers,
                                    desc=f"features {mine[0].corpus}", progress=False)
                t1 = time.perf_counter()
                st.feature_s += t1 - t0
                if runner is None:
                    runner = _Runner(path, workers=workers)
                say(f"{name}: {len(w)} speech windows, features {t1 - t0:.1f} s")
                if len(w):
                    emb = _embed_windows(
                        runner=runner, featurizer=featurizer, features=w.features, batch=batch, log=say, name=name
                    )
                else:
                    emb = np.zeros((0, *(n_blocks_d or (0, 0))), np.float16)
                t2 = time.perf_counter()
                st.embed_s += t2 - t1
                local, start = w.clip_index.astype(np.int32), np.asarray(w.start_s, dtype=np.float32)
                tmp = file.with_name(file.name + ".tmp")
                with tmp.open("wb") as f:
                    np.savez(f, emb=emb, clip_index=local, start_s=start, paths=np.array([c.path for c in mine]))
                tmp.replace(file)
                st.computed += 1
                st.windows_computed += int(emb.shape[0])
                say(f"{name}: embedded in {t2 - t1:.1f} s ({emb.shape[0] / max(t2 - t1, 1e-9):.1f} windows/s)")
            if emb.shape[0]:
                n_blocks_d = (int(emb.shape[1]), int(emb.shape[2]))
            parts.append((emb, np.asarray(idx, dtype=np.int32)[local], start))
    finally:
        if runner is not None:
            runner.close()
    st.chunks = len(chunks)
    shape = n_blocks_d or (0, 0)
    emb_all = np.concatenate([np.zeros((0, *shape), np.float16)] + [p[0].reshape(-1, *shape) for p in parts])
    index = np.concatenate([np.zeros(0, np.int32)] + [p[1] for p in parts]).astype(np.int32)
    start_all = np.concatenate([np.zeros(0, np.float32)] + [p[2] for p in parts]).astype(np.float32)
    # windows in clip order (chunks follow corpora, the caller's list may interleave them)
    order = np.argsort(index, kind="stable")
    return WindowSet(
        features=emb_all[order],
        clip_index=index[order],
        speech=np.ones(order.size, dtype=bool),
        clips=clip_list,
        start_s=start_all[order],
    )

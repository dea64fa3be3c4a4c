"""The training pipeline end to end.

Data, baselines, seed models, search, final model, RAVDESS 8-class model,
calibration, export, report.

Everything is driven by :func:`run_all` (``ser-train all``) and
:func:`run_interim` (``ser-train interim``); intermediate artefacts go to a run
folder (default ``training_runs/<name>``, git-ignored), the shipped model to
``models/`` and the report to ``docs/``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.config import FeatureConfig
from ser_engine.errors import ParameterError
from training.corpora import CORPORA, HARMONISED_LABELS, RAVDESS_LABELS, Clip, load_all
from training.evaluate import fit_temperature
from training.features import WindowSet, featurize_clips, fit_stats, gate_policy
from training.splits import DEFAULT_SPLIT_PATH, HELD_OUT, PARTS, assign, load_split, split_hash
from training.train import TrainConfig, evaluate_clips, fit_model, labels_of, predict_logits

__all__ = ["SEARCH_SPACE", "Data", "prepare_data", "run_all", "run_interim", "sample_config"]

logger = logging.getLogger("ser.training")
REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ser"


class Logger:
    """Prints with elapsed time and appends to a log file."""

    def __init__(self, path: Path | None) -> None:
        self.t0 = time.perf_counter()
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, msg: str) -> None:
        line = f"[{(time.perf_counter() - self.t0) / 60:6.1f} min] {msg}"
        print(line, flush=True)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")


EVAL_PARTS = ("val", "test", "unseen_val", "unseen_test")


@dataclass
class Data:
    """Clips and cached windows of one split.

    ``clean`` has a WindowSet per part of :data:`training.splits.PARTS`; its clips
    are those with speech (``no_speech`` lists the clips in which the gate found
    none, per part, as ``ser analyze`` would report "no speech").
    """

    clips: dict[str, list[Clip]]
    clean: dict[str, WindowSet]
    train_aug: WindowSet | None
    config: FeatureConfig  # with training statistics
    skipped: list[Any]
    no_speech: dict[str, list[Clip]]

    @property
    def mean(self) -> npt.NDArray[np.float64]:
        """Per-value mean of the training frames, shape ``(n_features,)`` (``config.mean``)."""
        return _statistic(self.config.mean, "mean")

    @property
    def std(self) -> npt.NDArray[np.float64]:
        """Per-value standard deviation of the training frames, shape ``(n_features,)`` (``config.std``)."""
        return _statistic(self.config.std, "std")


def _statistic(values: Sequence[float] | None, name: str) -> npt.NDArray[np.float64]:
    if values is None:
        raise ParameterError(f"the feature config has no training {name} (prepare_data fits it)")
    return np.asarray(values, dtype=np.float64)


def prepare_data(
    *,
    root: Path,
    split_path: Path = DEFAULT_SPLIT_PATH,
    n_aug: int = 2,
    seed: int = 7,
    cache_dir: Path | None = None,
    workers: int = 2,
    corpora: Sequence[str] = CORPORA,
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> Data:
    """Read corpora, split by speaker, featurize (cached), fit train statistics.

    ``limit`` keeps the first ``limit`` clips per part after a seeded shuffle
    (tests and smoke runs).
    """
    clips, skipped = load_all(root=root, corpora=corpora)
    reasons = Counter(f"{Path(s.path).relative_to(root).parts[0]}: {s.reason}" for s in skipped)
    for r, n in sorted(reasons.items()):
        log(f"skipped {n} file(s) of {r}")
    split = load_split(split_path)
    split = {**split, "corpora": {k: v for k, v in split["corpora"].items() if k in corpora}}
    parts = assign(clips=clips, split=split)
    if limit is not None:
        rng = np.random.default_rng(seed)
        parts = {p: [c[i] for i in sorted(rng.permutation(len(c))[:limit])] for p, c in parts.items()}
    log("clips: " + ", ".join(f"{p} {len(c)}" for p, c in parts.items()) + f"; windows: {gate_policy()}")
    base = FeatureConfig()
    clean: dict[str, WindowSet] = {}
    no_speech: dict[str, list[Clip]] = {}
    for p in PARTS:
        w = featurize_clips(clips=parts[p], config=base, cache_dir=cache_dir, workers=workers, desc=f"featurize {p}")
        has = w.windows_per_clip() > 0
        no_speech[p] = [c for c, h in zip(w.clips, has, strict=True) if not h]
        clean[p] = w.subset_clips(has)
        parts[p] = clean[p].clips
        if no_speech[p]:
            log(f"{p}: {len(no_speech[p])} clip(s) without speech windows dropped (ser analyze: no speech)")
    aug: WindowSet | None = None
    for k in range(1, n_aug + 1):
        w = featurize_clips(
            clips=parts["train"],
            config=base,
            variant=k,
            seed=seed,
            cache_dir=cache_dir,
            workers=workers,
            desc=f"augment train copy {k}",
        )
        aug = w if aug is None else aug.concat(w)
    mean, std = fit_stats(clean["train"])
    cfg = base.with_stats(mean=mean, std=std)
    for p, w in clean.items():
        log(f"{p}: {len(w.clips)} clips, {len(w)} speech windows")
    if aug is not None:
        log(f"train augmented copies: {len(aug)} windows")
    return Data(clips=parts, clean=clean, train_aug=aug, config=cfg, skipped=skipped, no_speech=no_speech)


def validation_set(data: Data, *, labels: Sequence[str] = HARMONISED_LABELS, fine: bool = False) -> tuple[
    WindowSet, npt.NDArray[np.int64], npt.NDArray[np.int64]
]:
    """Model-selection set: validation speakers (group 0) and the unseen-corpus validation (group 1).

    Returns
    -------
    windows : WindowSet
    y : ndarray, shape (n_clips,)
    groups : ndarray, shape (n_clips,)
    """
    val, unseen = data.clean["val"], data.clean["unseen_val"]
    both = val.concat(unseen)
    groups = np.concatenate([np.zeros(len(val.clips), np.int64), np.ones(len(unseen.clips), np.int64)])
    if not unseen.clips:
        groups = groups[: len(val.clips)]
    return both, labels_of(both.clips, labels=labels, fine=fine), groups


# Hyper-parameter search ---------------------------------------------------
SEARCH_SPACE: dict[str, Any] = {
    "filters": [(16, 32, 64, 128)],
    "stem_stride": [(2, 2)],
    "dropout": ("uniform", 0.2, 0.5),
    "learning_rate": ("log-uniform", 7e-4, 4e-3),
    "label_smoothing": [0.0, 0.05, 0.1],
    "time_mask_max": [15, 25, 40],
    "freq_mask_max": [6, 10, 14],
    "mixup_alpha": [0.0, 0.2],
    "freq_warp": [0.0, 0.05],
}
"""Declared random-search space of the 2D CNN. Fixed in every trial (chosen in the
recipe exploration on validation speakers, see docs/results.md): in-graph per-window
mel-band mean normalisation (``window_cmn``) and an exponential moving average of
the weights (``ema_decay`` 0.998). The architecture is fixed at the fastest one
of the earlier searches (16-32-64-128 channels, stem stride 2x2): on the slowest
2-core machine seen (AMD EPYC without AVX2) it trains at about 270 windows/s against
140 for 24-48-96-128, and only then does a 30-epoch final model fit in the hour."""


def sample_config(rng: np.random.Generator, base: TrainConfig) -> TrainConfig:
    """Draw one configuration from ``SEARCH_SPACE``."""
    filters = SEARCH_SPACE["filters"][int(rng.integers(len(SEARCH_SPACE["filters"])))]
    dropout = float(rng.uniform(SEARCH_SPACE["dropout"][1], SEARCH_SPACE["dropout"][2]))
    lo, hi = SEARCH_SPACE["learning_rate"][1:]
    lr = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    stem = SEARCH_SPACE["stem_stride"][int(rng.integers(len(SEARCH_SPACE["stem_stride"])))]
    return replace(
        base,
        arch="cnn2d",
        arch_params={
            **base.arch_params,
            "filters": tuple(filters),
            "stem_stride": tuple(stem),
            "dropout": round(dropout, 3),
        },
        learning_rate=round(lr, 5),
        label_smoothing=float(rng.choice(SEARCH_SPACE["label_smoothing"])),
        time_mask_max=int(rng.choice(SEARCH_SPACE["time_mask_max"])),
        freq_mask_max=int(rng.choice(SEARCH_SPACE["freq_mask_max"])),
        mixup_alpha=float(rng.choice(SEARCH_SPACE["mixup_alpha"])),
        freq_warp=float(rng.choice(SEARCH_SPACE["freq_warp"])),
    )


SEARCH_KEYS = (
    "arch_params",
    "learning_rate",
    "label_smoothing",
    "time_mask_max",
    "freq_mask_max",
    "mixup_alpha",
    "freq_warp",
    "ema_decay",
    "balance",
)


# Helpers ----------------------------------------------------------------------
def _train_set(data: Data) -> tuple[WindowSet, npt.NDArray[np.int64]]:
    train = data.clean["train"] if data.train_aug is None else data.clean["train"].concat(data.train_aug)
    return train, labels_of(train.clips, labels=HARMONISED_LABELS)


def _per_corpus(
    *,
    logits: npt.NDArray[np.float32],
    clip_index: npt.NDArray[np.int32],
    clips: list[Clip],
    y: npt.NDArray[np.int64],
    labels: Sequence[str],
    temperature: float,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    overall, _ = evaluate_clips(logits=logits, clip_index=clip_index, y_true=y, labels=labels, temperature=temperature)
    out["all"] = overall
    corpus = np.array([c.corpus for c in clips])
    for name in CORPORA:
        keep = corpus == name
        if not keep.any():
            continue
        sel = np.isin(clip_index, np.flatnonzero(keep))
        remap = np.cumsum(keep) - 1
        m, _ = evaluate_clips(
            logits=logits[sel],
            clip_index=remap[clip_index[sel]],
            y_true=y[keep],
            labels=labels,
            temperature=temperature,
        )
        out[name] = m
    return out


def _export(
    *,
    model: Any,
    out_dir: Path,
    data_config: FeatureConfig,
    labels: tuple[str, ...],
    temperature: float,
    parity_windows: npt.NDArray[np.float32],
    name: str,
    provenance: dict[str, Any],
    metrics: dict[str, Any],
    log: Callable[[str], None],
) -> float:
    from training.export import check_parity, export_onnx, write_metadata

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    onnx_path = export_onnx(model, tmp / "model.onnx", n_features=data_config.n_features)
    diff = check_parity(model, onnx_path, parity_windows, temperature=temperature)
    log(f"export parity: max abs probability difference {diff:.2e} (limit 1e-4)")
    prov = dict(provenance)
    prov["parity_max_abs_prob_diff"] = diff
    write_metadata(
        model_dir=tmp,
        name=name,
        labels=labels,
        feature_config=data_config,
        temperature=temperature,
        provenance=prov,
        metrics=metrics,
    )
    from ser_engine.inference.model import EmotionModel

    EmotionModel.load(tmp)  # the engine must accept it before it replaces anything
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in ("model.onnx", "model.json"):
        shutil.copy2(tmp / f, out_dir / f)
    shutil.rmtree(tmp)
    return diff


def _parity_windows(data: Data, n: int = 16) -> npt.NDArray[np.float32]:
    w = data.clean["val"] if len(data.clean["val"]) else data.clean["train"]
    mu = np.asarray(data.mean, dtype=np.float32)
    sd = np.asarray(data.std, dtype=np.float32)
    idx = np.linspace(0, len(w) - 1, min(n, len(w))).astype(int)
    return np.asarray((w.features[idx].astype(np.float32) - mu) / sd, dtype=np.float32)


def _portable(path: Path) -> str:
    """Return ``path`` relative to the repository when it lies beside it (``../shared/data/ser``), else its name.

    Provenance must not carry this machine's absolute paths.
    """
    try:
        return os.path.relpath(Path(path).resolve(), REPO)
    except ValueError:
        return Path(path).name


def _provenance(
    *, root: Path, split_path: Path, command: str, corpora: Sequence[str], extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "corpora": list(corpora),
        "data_root": _portable(root),
        "split_file": _portable(split_path),
        "split_sha256": split_hash(split_path),
        "silence_policy": gate_policy(),
        "command": command,
        **extra,
    }


# Interim -------------------------------------------------------------------------
def run_interim(
    *,
    root: Path = DEFAULT_DATA,
    out_dir: Path = REPO / "models",
    run_dir: Path = REPO / "training_runs" / "interim",
    epochs: int = 4,
    cache_dir: Path | None = None,
    workers: int = 2,
    limit: int | None = None,
) -> dict[str, Any]:
    """Train a quick CNN on the clean training speakers, exported to ``out_dir``."""
    from training.train import configure_tensorflow

    configure_tensorflow()
    log = Logger(run_dir / "log.txt")
    data = prepare_data(root=root, n_aug=0, cache_dir=cache_dir, workers=workers, limit=limit, log=log)
    labels = HARMONISED_LABELS
    train, y_train = _train_set(data)
    y_val = labels_of(data.clips["val"], labels=labels)
    cfg = TrainConfig(arch="cnn2d", arch_params={"filters": (16, 32, 64, 128)}, epochs=epochs, patience=epochs)
    model, hist = fit_model(
        cfg=cfg,
        train=train,
        y_train=y_train,
        val=data.clean["val"],
        y_val=y_val,
        labels=labels,
        mean=data.mean,
        std=data.std,
        log=log,
        feature_config=data.config,
    )
    vl, vi = predict_logits(model, data.clean["val"], mean=data.mean, std=data.std)
    t = fit_temperature(window_logits=vl, clip_index=vi, n_clips=len(data.clips["val"]), y_true=y_val)
    tl, ti = predict_logits(model, data.clean["test"], mean=data.mean, std=data.std)
    y_test = labels_of(data.clips["test"], labels=labels)
    res = _per_corpus(logits=tl, clip_index=ti, clips=data.clips["test"], y=y_test, labels=labels, temperature=t)
    summary = {k: {m: round(v[m], 4) for m in ("accuracy", "uar", "macro_f1", "ece")} for k, v in res.items()}
    log(f"interim test metrics (T={t:.2f}): {json.dumps(summary)}")
    prov = _provenance(
        root=root,
        split_path=DEFAULT_SPLIT_PATH,
        command="ser-train interim",
        corpora=CORPORA,
        extra={"train_config": cfg.to_dict(), "history": hist, "interim": True},
    )
    _export(
        model=model,
        out_dir=out_dir,
        data_config=data.config,
        labels=labels,
        temperature=t,
        parity_windows=_parity_windows(data),
        name="ser-cnn2d-interim",
        provenance=prov,
        metrics={"test": summary, "note": "interim model: clean audio only, few epochs, no search"},
        log=log,
    )
    log(f"interim model written to {out_dir}")
    return summary


# The full pipeline -----------------------------------------------------------------
@dataclass
class Budget:
    """Compute budget of ``ser-train all`` (sized for <= 90 min from an empty cache on 2 cores without AVX2)."""

    n_aug: int = 2
    seed_epochs: int = 2
    seed_windows: int = 6000
    search_trials: int = 3
    search_epochs: int = 3
    search_windows: int = 6000
    final_epochs: int = 30
    final_windows: int = 12000
    final_patience: int = 10
    r8_epochs: int = 10
    limit: int | None = None

    @classmethod
    def quick(cls) -> Budget:
        return cls(
            n_aug=1,
            seed_epochs=1,
            seed_windows=256,
            search_trials=1,
            search_epochs=1,
            search_windows=256,
            final_epochs=1,
            final_windows=512,
            final_patience=1,
            r8_epochs=1,
            limit=40,
        )


def _short(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "accuracy", "uar", "macro_f1", "ece")
    return {
        k: (round(metrics[k], 4) if isinstance(metrics.get(k), float) else metrics.get(k)) for k in keys if k in metrics
    }


def _keras_eval(
    model: Any,
    data: Data,
    part: str,
    *,
    labels: Sequence[str],
    temperature: float = 1.0,
    fine: bool = False,
    keep: Callable[[Clip], bool] | None = None,
) -> tuple[dict[str, Any], npt.NDArray[np.float32], npt.NDArray[np.int32], npt.NDArray[np.int64], list[Clip]]:
    w = data.clean[part]
    clips = w.clips
    if keep is not None:
        mask = np.array([keep(c) for c in clips])
        w = w.subset_clips(mask)
        clips = w.clips
    y = labels_of(clips, labels=labels, fine=fine)
    logits, idx = predict_logits(model, w, mean=data.mean, std=data.std)
    res = _per_corpus(logits=logits, clip_index=idx, clips=clips, y=y, labels=labels, temperature=temperature)
    return res, logits, idx, y, clips


def _onnx_latency_ms(path: Path, n_frames: int, n_features: int, *, repeats: int = 200) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, n_frames, n_features)).astype(np.float32)
    for _ in range(20):
        sess.run(None, {"features": x})
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sess.run(None, {"features": x})
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def _onnx_logits(
    path: Path, windows: WindowSet, cfg: FeatureConfig
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    use = np.flatnonzero(windows.usable())
    mu = np.asarray(cfg.mean, dtype=np.float32)
    sd = np.asarray(cfg.std, dtype=np.float32)
    out = []
    for i in range(0, use.size, 256):
        x = ((windows.features[use[i : i + 256]].astype(np.float32) - mu) / sd).astype(np.float32)
        out.append(sess.run(["logits"], {"features": x})[0])
    return np.concatenate(out), windows.clip_index[use]


def _try_int8(
    *, onnx_path: Path, data: Data, run_dir: Path, labels: Sequence[str], temperature: float, log: Callable[[str], None]
) -> dict[str, Any]:
    """Quantise the model to int8 (static QDQ, calibrated on training windows) and compare on validation speakers."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    cfg = data.config
    mu = np.asarray(cfg.mean, dtype=np.float32)
    sd = np.asarray(cfg.std, dtype=np.float32)
    train = data.clean["train"]
    idx = np.random.default_rng(0).permutation(len(train))[:128]

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.items = iter([{"features": ((train.features[i : i + 1].astype(np.float32) - mu) / sd)} for i in idx])

        def get_next(self) -> dict[str, Any] | None:
            return next(self.items, None)

    pre = run_dir / "model.pre.onnx"
    q = run_dir / "model.int8.onnx"
    try:
        quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(q),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
    except Exception as exc:
        # The int8 variant is an optional experiment: its failure is reported, not fatal (onnxruntime.quantization
        # raises ORT, onnx and shape-inference errors of many types). The traceback goes to stderr.
        logger.warning("int8 quantisation failed", exc_info=True)
        log(f"int8 quantisation failed: {exc}")
        return {"ok": False, "error": str(exc)}
    sel_windows, y_val, _groups = validation_set(data, labels=labels)
    res: dict[str, Any] = {"ok": True}
    for tag, path in (("fp32", onnx_path), ("int8", q)):
        lg, ci = _onnx_logits(path, sel_windows, cfg)
        m, _ = evaluate_clips(logits=lg, clip_index=ci, y_true=y_val, labels=labels, temperature=temperature)
        res[tag] = {
            "val_uar": round(m["uar"], 4),
            "val_accuracy": round(m["accuracy"], 4),
            "latency_ms": round(_onnx_latency_ms(path, cfg.n_frames, cfg.n_features), 3),
            "size_bytes": path.stat().st_size,
        }
    res["faster"] = res["int8"]["latency_ms"] < res["fp32"]["latency_ms"]
    res["uar_cost_points"] = round(100 * (res["fp32"]["val_uar"] - res["int8"]["val_uar"]), 2)
    res["ship_int8"] = bool(res["faster"] and res["uar_cost_points"] < 1.0)
    log(f"int8: {json.dumps(res)}")
    return res


@dataclass
class _Run:
    """What the stages of :func:`run_all` share: the data, the model-selection set, the budget, the log.

    ``results`` is the run's ``results.json`` as it grows: each stage adds its own keys.
    """

    data: Data
    budget: Budget
    run_dir: Path
    log: Callable[[str], None]
    results: dict[str, Any]
    labels: tuple[str, ...] = HARMONISED_LABELS

    def __post_init__(self) -> None:
        self.y = {p: labels_of(self.data.clips[p], labels=self.labels) for p in PARTS}
        self.sel_windows, self.sel_y, self.sel_groups = validation_set(self.data)
        self._train: tuple[WindowSet, npt.NDArray[np.int64]] | None = None

    def group_score(self, pred: npt.NDArray[np.int64]) -> tuple[float, list[float]]:
        """Score predictions of the model-selection set: the mean of its groups' UAR, and each group's."""
        from training.evaluate import classification_metrics

        uars = [
            classification_metrics(
                y_true=self.sel_y[self.sel_groups == g], y_pred=pred[self.sel_groups == g], labels=self.labels
            )["uar"]
            for g in np.unique(self.sel_groups)
        ]
        return float(np.mean(uars)), uars

    def fit(self, cfg: TrainConfig) -> tuple[Any, dict[str, Any]]:
        """Train one network on the training windows (clean and augmented), selected on the selection set."""
        if self._train is None:  # made once, when the first network is trained (after the baselines)
            self._train = _train_set(self.data)
        train, y_train = self._train
        return fit_model(
            cfg=cfg,
            train=train,
            y_train=y_train,
            val=self.sel_windows,
            y_val=self.sel_y,
            labels=self.labels,
            mean=self.data.mean,
            std=self.data.std,
            log=self.log,
            feature_config=self.data.config,
            val_groups=self.sel_groups,
        )


@contextlib.contextmanager
def _stage(name: str, *, timings: dict[str, float], log: Callable[[str], None]) -> Iterator[None]:
    """Time one stage of :func:`run_all` into ``timings`` (minutes) and log it; a stage that fails is not timed."""
    t0 = time.perf_counter()
    yield
    timings[name] = round((time.perf_counter() - t0) / 60, 2)
    log(f"stage {name}: {timings[name]} min")


def run_all(
    *,
    root: Path = DEFAULT_DATA,
    out_dir: Path = REPO / "models",
    docs_dir: Path = REPO / "docs",
    run_dir: Path = REPO / "training_runs" / "all",
    cache_dir: Path | None = None,
    workers: int = 2,
    quick: bool = False,
    budget: Budget | None = None,
) -> dict[str, Any]:
    """Reproduce the shipped model, its metadata and card, and the evaluation report.

    Every choice (search trial, epoch, temperature, voice reference, uncertainty
    threshold) is made on the validation speakers of the training corpora and the
    unseen-corpus validation; test speakers and the unseen-corpus test are read
    only after the model is final.
    """
    from training.train import configure_tensorflow

    configure_tensorflow()
    b = budget or (Budget.quick() if quick else Budget())
    run_dir.mkdir(parents=True, exist_ok=True)
    log = Logger(run_dir / "log.txt")
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    with _stage("data", timings=timings, log=log):
        data = prepare_data(root=root, n_aug=b.n_aug, cache_dir=cache_dir, workers=workers, limit=b.limit, log=log)
    results: dict[str, Any] = {
        "labels": list(HARMONISED_LABELS),
        "models": {},
        "timings_min": timings,
        "held_out": {k: list(v) for k, v in HELD_OUT.items()},
        "selection": "mean of the clip UAR on the validation speakers and on the unseen-corpus validation",
    }
    exploration = Path(__file__).with_name("exploration.json")
    if exploration.is_file():
        results["exploration"] = json.loads(exploration.read_text(encoding="utf-8"))
    run = _Run(data=data, budget=b, run_dir=run_dir, log=log, results=results)

    # 1. baselines on pooled features (clean training clips)
    with _stage("baselines", timings=timings, log=log):
        _run_baselines(run=run)
    # 2. recipe search for the 2D CNN, scored on validation speakers + unseen-corpus validation
    with _stage("search", timings=timings, log=log):
        best_config = _run_search(run=run)
    # 3. final model: best configuration, full budget
    with _stage("final_model", timings=timings, log=log):
        model, final_cfg = _run_final_model(run=run, best_config=best_config)
    # 4. export (fp32), parity, int8 trial; the shipped graph is then the one evaluated
    with _stage("export", timings=timings, log=log):
        staging, prov = _run_export(run=run, model=model, final_cfg=final_cfg, root=root, quick=quick)
    # 5. choices on validation (temperature, voice reference and strength, threshold), then the test
    #    figures; all through the engine's EmotionModel on the shipped graph
    with _stage("evaluation", timings=timings, log=log):
        evaluate_shipped(data=data, staging=staging, results=results, log=log)
    # 6. RAVDESS 8 classes: same pipeline, network initialised from the 7-class trunk
    with _stage("ravdess8", timings=timings, log=log):
        results["ravdess8"] = _ravdess8(model=model, data=data, final_cfg=final_cfg, epochs=b.r8_epochs, log=log)

    timings["total"] = round((time.perf_counter() - t_start) / 60, 2)
    results["split"] = {
        "file": "training/splits/speakers.json",
        "sha256": split_hash(DEFAULT_SPLIT_PATH),
        "speakers": load_split(DEFAULT_SPLIT_PATH)["corpora"],
        "clips": {p: len(c) for p, c in data.clips.items()},
        "no_speech_clips": {p: len(c) for p, c in data.no_speech.items()},
        "windows": {p: len(w) for p, w in data.clean.items()},
        "train_augmented_windows": 0 if data.train_aug is None else len(data.train_aug),
    }
    results["corpora"] = _corpus_summary(data)
    meta_prov = json.loads((staging / "model.json").read_text())["provenance"]
    results["provenance"] = {**prov, **meta_prov}
    _ship(results=results, staging=staging, run_dir=run_dir, out_dir=out_dir, docs_dir=docs_dir, quick=quick)
    log(f"done in {timings['total']} min")
    return results


def _run_baselines(*, run: _Run) -> None:
    """Stage 1: fit the scikit-learn baselines on pooled clean windows; score them on every evaluation part.

    Adds one entry per baseline to ``run.results["models"]``.
    """
    from training.baselines import BASELINES, fit_predict, pooled_features
    from training.evaluate import classification_metrics

    data, y, labels = run.data, run.y, run.labels
    eval_parts = [p for p in ("test", "unseen_val", "unseen_test") if data.clips[p]]
    pooled = {
        p: pooled_features(data.clean[p], mean=data.mean, std=data.std) for p in ["train", *eval_parts]
    }
    pooled_sel = pooled_features(run.sel_windows, mean=data.mean, std=data.std)
    for name in BASELINES:
        preds = fit_predict(
            name, x_train=pooled["train"], y_train=y["train"], x_eval=[pooled_sel] + [pooled[p] for p in eval_parts]
        )
        score, uars = run.group_score(preds[0])
        entry: dict[str, Any] = {
            "kind": "scikit-learn on pooled log-mel mean+std (128 features)",
            "val": {"score": round(score, 4), "group_uar": [round(u, 4) for u in uars]},
        }
        for part, pred in zip(eval_parts, preds[1:], strict=True):
            corpus = np.array([c.corpus for c in data.clips[part]])
            res = {"all": classification_metrics(y_true=y[part], y_pred=pred, labels=labels)}
            for c in sorted(set(corpus)):
                keep = corpus == c
                res[c] = classification_metrics(y_true=y[part][keep], y_pred=pred[keep], labels=labels)
            entry[part] = res
        run.results["models"][name] = entry
        run.log(
            f"baseline {name}: val score {score:.4f}, test UAR {entry['test']['all']['uar']:.4f}"
            + (f", unseen test UAR {entry['unseen_test']['all']['uar']:.4f}" if "unseen_test" in entry else "")
        )


def _run_search(*, run: _Run) -> dict[str, Any]:
    """Stage 2: try ``budget.search_trials`` recipes of the 2D CNN; return the best trial's configuration.

    The trials are the base recipe, the same without class balancing, then samples of
    :data:`SEARCH_SPACE`. Each trial is appended to ``search.jsonl`` in the run folder as it ends;
    the search is summarised in ``run.results["search"]``.
    """
    b = run.budget
    base = TrainConfig(
        arch="cnn2d",
        arch_params={"filters": (16, 32, 64, 128), "stem_stride": (2, 2), "dropout": 0.3, "window_cmn": True},
        ema_decay=0.998,
        balance="corpus_class",
        epochs=b.search_epochs,
        windows_per_epoch=b.search_windows,
        patience=b.search_epochs,
    )
    rng = np.random.default_rng(11)
    trials = [base, replace(base, balance="none")]
    trials += [sample_config(rng, base) for _ in range(max(0, b.search_trials - len(trials)))]
    trials = trials[: max(1, b.search_trials)]
    search_log: list[dict[str, Any]] = []
    for i, cfg in enumerate(trials):
        run.log(f"search trial {i + 1}/{len(trials)}: {json.dumps({k: cfg.to_dict()[k] for k in SEARCH_KEYS})}")
        _, hist = run.fit(cfg)
        search_log.append({"trial": i + 1, "config": cfg.to_dict(), "val_score": hist["best_val_uar"], "history": hist})
        with (run.run_dir / "search.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(search_log[-1]) + "\n")
    best = max(search_log, key=lambda r: r["val_score"])
    run.results["search"] = {
        "space": {k: (list(map(list, v)) if k in ("filters", "stem_stride") else v) for k, v in SEARCH_SPACE.items()},
        "budget": f"{len(trials)} trials x {b.search_epochs} epochs x {b.search_windows} windows; "
        "score = mean UAR of validation speakers and unseen-corpus validation",
        "trials": [
            {
                "trial": r["trial"],
                "val_score": round(r["val_score"], 4),
                "group_uar": r["history"].get("val_group_uar", [[]])[r["history"]["best_epoch"] - 1]
                if r["history"].get("val_group_uar")
                else [],
                **{k: r["config"][k] for k in SEARCH_KEYS},
            }
            for r in search_log
        ],
        "best_trial": best["trial"],
    }
    config: dict[str, Any] = best["config"]
    return config


def _run_final_model(*, run: _Run, best_config: dict[str, Any]) -> tuple[Any, TrainConfig]:
    """Stage 3: train the best configuration with the full budget; return the Keras model and its configuration."""
    b = run.budget
    final_cfg = TrainConfig(
        **{
            **best_config,
            "epochs": b.final_epochs,
            "windows_per_epoch": b.final_windows,
            "patience": b.final_patience,
        }
    )
    # the configuration went through JSON (search.jsonl): its tuples came back as lists
    final_cfg.arch_params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in final_cfg.arch_params.items()}
    model, hist = run.fit(final_cfg)
    run.results["models"]["cnn2d"] = {
        "kind": f"2D CNN (shipped), best search trial, {b.final_epochs} epochs x {b.final_windows} windows",
        "train_config": final_cfg.to_dict(),
        "params": int(model.count_params()),
        "history": hist,
    }
    run.log(f"final model: best validation score {hist['best_val_uar']:.4f} at epoch {hist['best_epoch']}")
    return model, final_cfg


def _run_export(
    *, run: _Run, model: Any, final_cfg: TrainConfig, root: Path, quick: bool
) -> tuple[Path, dict[str, Any]]:
    """Stage 4: export the final model to ONNX in the staging folder, check parity, try int8.

    The int8 graph replaces the float one when it is faster and costs under a point of
    validation UAR. Returns the staging folder (``<run>/model``) and the run's provenance.
    """
    data, b, log = run.data, run.budget, run.log
    staging = run.run_dir / "model"
    prov = _provenance(
        root=root,
        split_path=DEFAULT_SPLIT_PATH,
        command="ser-train all" + (" --quick" if quick else ""),
        corpora=[c for c in CORPORA if c not in sum(HELD_OUT.values(), ())],
        extra={
            "held_out_corpora": {k: list(v) for k, v in HELD_OUT.items()},
            "train_config": final_cfg.to_dict(),
            "augmentation": __import__("training.augment", fromlist=["x"]).default_chain().describe(),
            "n_augmented_copies": b.n_aug,
            "normalisation": "per-mel-band mean/std of the training speakers' clean speech windows",
        },
    )
    parity = _export(
        model=model,
        out_dir=staging,
        data_config=data.config,
        labels=run.labels,
        temperature=1.0,
        parity_windows=_parity_windows(data),
        name="ser-cnn2d",
        provenance=prov,
        metrics={},
        log=log,
    )
    int8 = _try_int8(
        onnx_path=staging / "model.onnx", data=data, run_dir=run.run_dir, labels=run.labels, temperature=1.0, log=log
    )
    run.results["int8"] = int8
    if int8.get("ship_int8"):
        shutil.copy2(run.run_dir / "model.int8.onnx", staging / "model.onnx")
        log("shipping the int8 model (faster, < 1 point validation UAR cost)")
    latency = _onnx_latency_ms(staging / "model.onnx", data.config.n_frames, data.config.n_features)
    size = (staging / "model.onnx").stat().st_size
    run.results["export"] = {
        "parity_max_abs_prob_diff": parity,
        "latency_ms_1thread": round(latency, 3),
        "size_bytes": size,
        "int8_shipped": bool(int8.get("ship_int8")),
    }
    log(f"shipped graph: {size / 1e6:.2f} MB, {latency:.2f} ms per 3 s window on one thread")
    return staging, prov


STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Candidate fractions of a voice's measured offset that a profile removes (chosen on validation)."""


def evaluate_shipped(*, data: Data, staging: Path, results: dict[str, Any], log: Callable[[str], None]) -> None:
    """Choose the calibration on validation, then measure the test speakers and unseen corpora.

    Temperature, voice reference and strength, and the uncertainty threshold are
    chosen on the validation speakers and the unseen-corpus validation; then the
    test speakers and the unseen-corpus test are measured zero-shot, calibrated
    and selectively. Scores through the engine's
    :class:`~ser_engine.inference.model.EmotionModel` on ``staging/model.onnx`` and fills ``results``.
    """
    from ser_engine.inference.model import EmotionModel
    from training.crosscorpus import (
        adaptation_eval,
        calibration_eval,
        choose_threshold,
        engine_logits,
        per_corpus_metrics,
        selective,
        speaker_mean_reference,
        voice_reference,
    )
    from training.evaluate import expected_calibration_error, fit_temperature

    labels = HARMONISED_LABELS
    sel_windows, sel_y, _groups = validation_set(data)
    int8 = results.get("int8", {})
    engine = EmotionModel.load(staging, threads=2)
    logits = {p: engine_logits(engine, data.clean[p]) for p in PARTS if p != "train"}
    sel_logits = np.concatenate([logits["val"], logits["unseen_val"]])
    temperature = fit_temperature(
        window_logits=sel_logits, clip_index=sel_windows.clip_index, n_clips=len(sel_windows.clips), y_true=sel_y
    )
    reference, n_ref = voice_reference(logits=logits["val"], windows=data.clean["val"])
    # strength: the fraction of the measured offset a profile removes, chosen with k = 2 neutral clips
    # per speaker on the validation speakers and the unseen-corpus validation (mean of the two UARs)
    strength_table: list[dict[str, Any]] = []
    for st in STRENGTHS:
        uars = []
        for p in ("val", "unseen_val"):
            if data.clips[p]:
                cal = calibration_eval(
                    logits=logits[p], windows=data.clean[p], labels=labels, temperature=temperature,
                    reference=reference, k=2, seed=3, strength=st,
                )["calibrated"]
                if "all" in cal:  # speakers with more than two neutral clips
                    uars.append(cal["all"]["uar"])
        score = float(np.mean(uars)) if uars else -1.0
        strength_table.append({"strength": st, "group_uar": [round(u, 4) for u in uars], "score": score})
        log(f"voice strength {st}: calibrated validation UAR {strength_table[-1]['group_uar']}")
    strength = max(strength_table, key=lambda r: (r["score"], r["strength"]))["strength"]
    sel = per_corpus_metrics(logits=sel_logits, windows=sel_windows, labels=labels, temperature=temperature)
    threshold, threshold_table = choose_threshold(sel["_probs"], sel["_y"])
    log(
        f"temperature {temperature:.3f}; uncertainty threshold {threshold:.2f}; reference from {n_ref} speakers; "
        f"voice strength {strength}"
    )
    zero: dict[str, Any] = {}
    for p in EVAL_PARTS:
        if data.clips[p]:
            zero[p] = per_corpus_metrics(logits=logits[p], windows=data.clean[p], labels=labels,
                                         temperature=temperature)
    uncal = {p: per_corpus_metrics(logits=logits[p], windows=data.clean[p], labels=labels, temperature=1.0)
             for p in zero}
    calib: dict[str, Any] = {}
    for p in ("val", "unseen_val", "test", "unseen_test"):
        if p in zero:
            calib[p] = {
                f"k{k}": calibration_eval(
                    logits=logits[p], windows=data.clean[p], labels=labels, temperature=temperature,
                    reference=reference, k=k, seed=5, strength=strength,
                )
                for k in (2, 4)
            }
    uncertain = {p: {name: selective(m["_probs"], m["_y"], threshold) for name, m in (("all", zero[p]),)}
                 for p in zero}
    for p in zero:
        corpus = np.array([c.corpus for c in data.clean[p].clips])
        for c in sorted(set(corpus)):
            keep = corpus == c
            uncertain[p][c] = selective(zero[p]["_probs"][keep], zero[p]["_y"][keep], threshold)

    def strip(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if not k.startswith("_")}

    graph = "int8" if int8.get("ship_int8") else "float32"
    results["models"]["cnn2d"]["evaluated_graph"] = f"shipped ONNX ({graph}) through EmotionModel"
    for p in zero:
        results["models"]["cnn2d"][p] = strip(zero[p])
    results["calibration"] = {
        "temperature": temperature,
        "fitted_on": "validation speakers + unseen-corpus validation",
        "ece_before": {p: strip(uncal[p])["all"]["ece"] for p in uncal},
        "ece_after": {p: {k: v["ece"] for k, v in strip(zero[p]).items()} for p in zero},
        "val_ece_before": expected_calibration_error(
            per_corpus_metrics(logits=sel_logits, windows=sel_windows, labels=labels, temperature=1.0)["_probs"],
            sel_y,
        ),
        "val_ece_after": sel["all"]["ece"],
    }
    results["voice_calibration"] = {
        "reference_logits": [round(float(v), 6) for v in reference],
        "reference_speakers": n_ref,
        "fitted_on": f"neutral speech windows of the {n_ref} validation speakers of the training corpora, "
        "mean of per-speaker means",
        "strength": strength,
        "strength_search": strength_table,
        "strength_rule": "k = 2 neutral clips per speaker; mean calibrated UAR of the validation speakers and "
        "the unseen-corpus validation",
        "eval": {
            p: {
                kk: {
                    "k": v["k"],
                    "speakers": v["speakers"],
                    "speakers_skipped": v["speakers_skipped"],
                    "profile_speech_windows": v["profile_speech_windows"],
                    "zero_shot": strip(v["zero_shot"]),
                    "calibrated": strip(v["calibrated"]),
                }
                for kk, v in ks.items()
            }
            for p, ks in calib.items()
        },
    }
    # unsupervised adaptation to each voice (all of a speaker's speech, no labels): measured for the
    # report as a direction, strength chosen on validation like the profile's
    ref_all = speaker_mean_reference(logits=logits["val"], windows=data.clean["val"])
    adapt_rows: list[dict[str, Any]] = []
    for st in (0.25, 0.5, 0.75, 1.0):
        uars = [
            adaptation_eval(logits=logits[p], windows=data.clean[p], labels=labels, temperature=temperature,
                            reference_all=ref_all, strength=st)["all"]["uar"]
            for p in ("val", "unseen_val")
            if data.clips[p]
        ]
        adapt_rows.append({"strength": st, "group_uar": [round(u, 4) for u in uars], "score": float(np.mean(uars))})
    adapt_strength = max(adapt_rows, key=lambda r: r["score"])["strength"]
    results["voice_adaptation"] = {
        "strength": adapt_strength,
        "strength_search": adapt_rows,
        "method": "per speaker, subtract strength x (mean logits over all their speech windows - the same mean "
        "over the validation speakers); no labels, no neutral recording; assumes the speaker's clips cover the "
        "emotions about as evenly as an acted corpus does",
        "eval": {
            p: strip(adaptation_eval(logits=logits[p], windows=data.clean[p], labels=labels,
                                     temperature=temperature, reference_all=ref_all, strength=adapt_strength))
            for p in ("test", "unseen_val", "unseen_test")
            if p in zero
        },
    }
    log(f"unsupervised voice adaptation: strength {adapt_strength} chosen on validation")
    results["uncertainty"] = {
        "threshold": threshold,
        "rule": "smallest top probability at which validation clips answered are right >= 60 % of the time "
        "with >= 30 % answered (else the best answered accuracy at >= 30 % coverage)",
        "validation_table": threshold_table,
        "selective": uncertain,
    }


def _ship(
    *, results: dict[str, Any], staging: Path, run_dir: Path, out_dir: Path, docs_dir: Path, quick: bool
) -> None:
    """Write the chosen numbers into ``staging/model.json`` and publish the run.

    Saves results.json, copies the model out, renders the model card and the report.
    """
    from ser_engine.inference.model import EmotionModel
    from training.report import write_model_card, write_results

    # ship: metadata gets the final numbers; write model, card, report
    meta = json.loads((staging / "model.json").read_text())
    meta["temperature"] = results["calibration"]["temperature"]
    meta["voice_calibration"] = {
        "reference_logits": results["voice_calibration"]["reference_logits"],
        "fitted_on": results["voice_calibration"]["fitted_on"],
        "strength": results["voice_calibration"]["strength"],
    }
    meta["uncertainty_threshold"] = results["uncertainty"]["threshold"]
    test_m = results["models"]["cnn2d"]["test"]
    cal_k2 = results["voice_calibration"]["eval"].get("unseen_test", {}).get("k2", {})
    meta["metrics"] = {
        "test_speakers": {k: _short(v) for k, v in test_m.items()},
        "unseen_corpora": {k: _short(v) for k, v in results["models"]["cnn2d"].get("unseen_test", {}).items()},
        "unseen_corpora_calibrated_k2": {
            k: _short(v) for k, v in cal_k2.get("calibrated", {}).items()
        },
        "temperature_fitted_on": "validation speakers + unseen-corpus validation",
        "ravdess8_test_uar": round(results["ravdess8"]["test"]["all"]["uar"], 4),
        "latency_ms_1thread": results["export"]["latency_ms_1thread"],
    }
    meta["provenance"]["int8"] = bool(results["export"]["int8_shipped"])
    (staging / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    EmotionModel.load(staging)
    (run_dir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    if not quick or out_dir != REPO / "models":
        for f in ("model.onnx", "model.json"):
            shutil.copy2(staging / f, out_dir / f)
        write_model_card(results=results, path=out_dir / "MODEL_CARD.md", quick=quick)
        write_results(results=results, docs_dir=docs_dir, quick=quick)


def run_evaluate(
    *,
    root: Path = DEFAULT_DATA,
    out_dir: Path = REPO / "models",
    docs_dir: Path = REPO / "docs",
    run_dir: Path = REPO / "training_runs" / "all",
    cache_dir: Path | None = None,
    workers: int = 2,
    quick: bool = False,
) -> dict[str, Any]:
    """Redo the choices and the test evaluation of a finished run without training.

    This is ``ser-train evaluate``: the choices on validation and the test
    evaluation of a finished ``ser-train all`` run (its ``results.json`` and
    staged ``model/``) are made again.

    The features come from the cache; the network is not touched, so the test speakers and the
    unseen corpora still had no say in training or in the choice of the network.
    """
    staging = run_dir / "model"
    path = run_dir / "results.json"
    if not path.is_file() or not (staging / "model.onnx").is_file():
        raise FileNotFoundError(f"{run_dir}: no finished `ser-train all` run (results.json and model/)")
    results: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    log = Logger(run_dir / "log.txt")
    log("ser-train evaluate: re-running the validation choices and the test evaluation")
    t0 = time.perf_counter()
    data = prepare_data(
        root=root, n_aug=0, cache_dir=cache_dir, workers=workers, limit=Budget.quick().limit if quick else None,
        log=log,
    )
    evaluate_shipped(data=data, staging=staging, results=results, log=log)
    results["timings_min"]["evaluate_rerun"] = round((time.perf_counter() - t0) / 60, 2)
    _ship(results=results, staging=staging, run_dir=run_dir, out_dir=out_dir, docs_dir=docs_dir, quick=quick)
    return results


def _corpus_summary(data: Data) -> dict[str, Any]:
    """Clips per corpus, part and label (for the report)."""
    out: dict[str, Any] = {}
    for p, clips in data.clips.items():
        for c in clips:
            e = out.setdefault(c.corpus, {"parts": {}, "labels": {}, "speakers": set()})
            e["parts"][p] = e["parts"].get(p, 0) + 1
            e["labels"][c.label] = e["labels"].get(c.label, 0) + 1
            e["speakers"].add(c.speaker)
    for e in out.values():
        e["speakers"] = len(e["speakers"])
    return out


def _ravdess8(
    *, model: Any, data: Data, final_cfg: TrainConfig, epochs: int, log: Callable[[str], None]
) -> dict[str, Any]:
    import keras

    from training.models import build_model

    labels = RAVDESS_LABELS
    def is_r(c: Clip) -> bool:
        return c.corpus == "ravdess"

    def subset(w: WindowSet) -> WindowSet:
        return w.subset_clips(np.array([is_r(c) for c in w.clips]))

    train = subset(data.clean["train"])
    if data.train_aug is not None:
        train = train.concat(subset(data.train_aug))
    val = subset(data.clean["val"])
    y_train = labels_of(train.clips, labels=labels, fine=True)
    y_val = labels_of(val.clips, labels=labels, fine=True)
    cfg = replace(
        final_cfg, epochs=epochs, windows_per_epoch=None, patience=epochs, learning_rate=final_cfg.learning_rate / 2
    )
    # the 7-class network's trunk, a new 8-way head
    m8 = build_model(
        cfg.arch, n_features=data.config.n_features, n_labels=len(labels), seed=cfg.seed, **cfg.arch_params
    )
    for src, dst in zip(model.layers[:-1], m8.layers[:-1], strict=True):
        dst.set_weights(src.get_weights())
    fitted, hist = fit_model(
        cfg=cfg,
        train=train,
        y_train=y_train,
        val=val,
        y_val=y_val,
        labels=labels,
        mean=data.mean,
        std=data.std,
        log=log,
        init_model=m8,
        feature_config=data.config,
    )
    del keras
    _, vl, vi, yv, _ = _keras_eval(fitted, data, "val", labels=labels, fine=True, keep=is_r)
    t = fit_temperature(window_logits=vl, clip_index=vi, n_clips=yv.size, y_true=yv)
    test, _, _, _, _ = _keras_eval(fitted, data, "test", labels=labels, fine=True, keep=is_r, temperature=t)
    log(f"RAVDESS 8 classes: test UAR {test['all']['uar']:.4f} (T={t:.2f})")
    return {
        "val_uar": hist["best_val_uar"],
        "history": hist,
        "temperature": t,
        "test": {"all": test["all"]},
        "train_config": cfg.to_dict(),
        "init": "7-class shipped network's trunk (trained on training speakers only)",
    }

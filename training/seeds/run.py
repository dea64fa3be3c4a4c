"""``ser-train seeds``: the seed systems under our protocol, planned to fit one hour.

The budget
----------
The full run must finish within 60 minutes on a 2-core machine without AVX2,
taken as :data:`TARGET_SLOWDOWN` times slower than the machine where the
costs in :data:`COST_MS` were measured. What costs time is the seeds' 1D CNN:
its 7.2 M parameters and about 2 GMAC per item make one of its training
epochs cost about 70 times as much per item as one of the CNN + BiLSTM. On
the 8 training corpora with 2 augmented copies one 1D CNN epoch would take
about an hour by itself; on RAVDESS alone with 2 copies, a few minutes. So the
plan is:

* **Features** (:mod:`training.seeds.data`): the three seed feature sets of
  every clip of the 11 corpora, through the engine's audio path, and the seeds'
  augmented copies (noise, pitch, stretch, shift; ``copies`` per clip) of every
  RAVDESS clip. Augmented copies of the other corpora are not made (they
  would double the featurization and every epoch; the all-corpora rows are
  therefore trained on the recordings only).
* **The leak table** on RAVDESS (the corpus all five seeds use): the decision
  tree and k-NN on both pooled sets and the CNN + BiLSTM on its MFCC sequence,
  each under the three protocols of :mod:`training.seeds.leak` (random split,
  augment-before-split, speaker-independent), with ``copies`` augmented copies.
  The 1D CNN is left out of it (``leak_cnn1d``: three fits of about 3,000 items, 2 h more at 2x).
* **Seed 002's random search** of the CNN + BiLSTM on RAVDESS,
  speaker-independent: ``search_trials`` configurations (the first is the
  seed's default, trained once for the leak table), chosen on our selection
  score (mean of the validation speakers' UAR and the unseen-corpus validation,
  CASIA), never on a test part.
* **The 1D CNN** on RAVDESS, speaker-independent, recordings only (one
  epoch with copies costs three times as much), early stopping with a small
  epoch limit (``max_epochs_cnn1d``): the budget allows it no more.
* **All 8 training corpora**, speaker-independent: the tree and k-NN on both
  pooled sets and the CNN + BiLSTM with the configuration the search chose,
  early stopping with ``max_epochs_all``.

Every speaker-independent model is scored on our test speakers (per corpus)
and on the unseen corpora (CASIA, the unseen validation, used for selection
only; UEM Spanish and emotiontts Korean, the unseen test), per corpus; the
leak-table models on their protocol's test part (for augment-before-split
also on its recordings alone, without augmented copies). Labels are the 7
harmonised classes (RAVDESS calm counts as neutral), one item per clip: the
networks read the clip's first frames (the seeds did), the tree and k-NN its
pooled frames; UAR over clips.

:func:`estimate` gives the time of a plan from :data:`COST_MS` (an upper
bound: every network runs to its epoch limit); ``ser-train seeds --dry-run``
prints it. :func:`run_seeds` runs the plan and writes ``results_seeds.json``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ser_engine.errors import ParameterError
from training.seeds.leak import PROTOCOLS, Item, protocol_split, speaker_independent_split
from training.seeds.systems import (
    BILSTM_DEFAULT,
    BILSTM_FRAMES,
    FEATURE_DIMS,
    FEATURE_SETS,
    TRAINING_CORPORA,
    SeedRun,
    search_configs,
)

if TYPE_CHECKING:
    from training.seeds.data import ItemFeatures

__all__ = [
    "COST_MS",
    "LEAK_RUNS",
    "TARGET_SLOWDOWN",
    "Budget",
    "PlannedFit",
    "SeedParts",
    "estimate",
    "format_plan",
    "make_plan",
    "prepare_parts",
    "run_seeds",
    "uar_by_corpus",
]

TARGET_SLOWDOWN = 2.0
"""The target machine (2 cores, no AVX2) against the development machine (2 shared cores, AVX-512)."""
COST_MS: dict[str, float] = {
    "featurize_recording": 12.0,
    "featurize_copy": 30.0,
    "cnn1d_train": 92.0,
    "cnn1d_predict": 32.0,
    "cnn_bilstm_train": 1.4,
    "cnn_bilstm_predict": 1.1,
    "tree_fit_per_value": 1.6e-3,
    "knn_per_distance_value": 2e-8,
    "keras_fit_overhead": 4000.0,
}
"""Planning costs in ms, per item unless named otherwise: featurizing one recording / augmented
copy into every view (one worker; the run uses two), one training epoch and one prediction of the
1D CNN and of the CNN + BiLSTM (seed 002's default configuration; the first five configurations of
the search cost 0.4-1.0 times as much per item: the BiLSTM's steps per batch dominate, not the
multiply-accumulates), the decision tree's fit per training value (items x features), the k-NN per
query x training item x feature, the fixed cost of a Keras fit. Measured once on the development
machine (docs/benchmarks.md, "Seed systems: planning costs", gives where and when); :func:`estimate`
scales them by :data:`TARGET_SLOWDOWN` for the target machine."""

_CNN1D = SeedRun("cnn1d", "mfcc_zcr_rms", "flat", 108)
_BILSTM = SeedRun("cnn_bilstm", "mfcc", "sequence", BILSTM_FRAMES)
_POOLED = tuple(
    SeedRun(m, fs, "pooled") for m in ("decision_tree", "knn") for fs in ("mfcc_zcr_rms", "mfcc_chroma_mel")
)
LEAK_RUNS: tuple[SeedRun, ...] = (*_POOLED, _BILSTM)
"""The models of the RAVDESS leak table (the 1D CNN joins with ``Budget.leak_cnn1d``)."""
HELD = ("casia", "uem-es", "emotiontts-ko")


@dataclass(frozen=True)
class Budget:
    """What the run may spend: copies, epoch limits, search trials.

    Attributes
    ----------
    copies : int
        The seeds' augmented copies per RAVDESS clip (seed 003: 2).
    max_epochs, patience : int
        Early stopping of the CNN + BiLSTM on RAVDESS (leak table and search).
    max_epochs_all, patience_all : int
        The CNN + BiLSTM on all training corpora.
    max_epochs_cnn1d, patience_cnn1d : int
        The 1D CNN on RAVDESS.
    search_trials : int
        Seed 002's random search: configurations tried (the first is the default).
    leak_cnn1d : bool
        Also score the 1D CNN under the random and augment-before-split protocols.
    limit : int or None
        Keep at most this many clips per corpus, part and label (a smoke run).
    seed : int
        Splits, augmentation, initialisation.
    """

    copies: int = 2
    max_epochs: int = 20
    patience: int = 5
    max_epochs_all: int = 12
    patience_all: int = 3
    max_epochs_cnn1d: int = 5
    patience_cnn1d: int = 3
    search_trials: int = 3
    leak_cnn1d: bool = False
    limit: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (
            "copies",
            "max_epochs",
            "patience",
            "max_epochs_all",
            "patience_all",
            "max_epochs_cnn1d",
            "patience_cnn1d",
            "search_trials",
        ):
            if getattr(self, name) < 1:
                raise ParameterError(f"Budget.{name} must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ParameterError("Budget.limit must be at least 1")


@dataclass(frozen=True)
class PlannedFit:
    """One training of the run.

    Attributes
    ----------
    stage : str
        ``leak`` (RAVDESS, every protocol), ``search`` (CNN + BiLSTM trials on RAVDESS),
        ``ravdess`` (the 1D CNN on RAVDESS) or ``all`` (all training corpora).
    run : SeedRun
    protocol : str
    corpora : tuple of str
        Training corpora.
    max_epochs, patience : int or None
        Networks only.
    trial : int or None
        Search trial (0 = the default configuration, the leak table's speaker-independent fit).
    recordings_only : bool
        Train on the recordings without their augmented copies.
    """

    stage: str
    run: SeedRun
    protocol: str
    corpora: tuple[str, ...]
    max_epochs: int | None = None
    patience: int | None = None
    trial: int | None = None
    recordings_only: bool = False

    @property
    def name(self) -> str:
        """``<stage>/<protocol>/<model>/<features>`` (``#<trial>`` for a search trial)."""
        base = f"{self.stage}/{self.protocol}/{self.run.model}/{self.run.feature_set}"
        return base if self.trial is None else f"{base}#{self.trial}"


def make_plan(budget: Budget) -> list[PlannedFit]:
    """List the fits of ``ser-train seeds`` in the order they run (see the module docstring)."""
    plan: list[PlannedFit] = []
    leak = [*LEAK_RUNS, _CNN1D] if budget.leak_cnn1d else list(LEAK_RUNS)
    for protocol in PROTOCOLS:
        for run in leak:
            epochs, pat = _epochs(run, budget, all_corpora=False)
            trial = 0 if run == _BILSTM and protocol == "speaker_independent" else None
            plan.append(PlannedFit("leak", run, protocol, ("ravdess",), epochs, pat, trial))
    for k in range(1, budget.search_trials):
        plan.append(
            PlannedFit("search", _BILSTM, "speaker_independent", ("ravdess",), budget.max_epochs, budget.patience, k)
        )
    if not budget.leak_cnn1d:
        plan.append(
            PlannedFit(
                "ravdess",
                _CNN1D,
                "speaker_independent",
                ("ravdess",),
                budget.max_epochs_cnn1d,
                budget.patience_cnn1d,
                recordings_only=True,
            )
        )
    for run in (*_POOLED, _BILSTM):
        epochs, pat = _epochs(run, budget, all_corpora=True)
        plan.append(PlannedFit("all", run, "speaker_independent", TRAINING_CORPORA, epochs, pat))
    return plan


def _epochs(run: SeedRun, budget: Budget, *, all_corpora: bool) -> tuple[int | None, int | None]:
    if run.model == "cnn_bilstm":
        return (budget.max_epochs_all, budget.patience_all) if all_corpora else (budget.max_epochs, budget.patience)
    if run.model == "cnn1d":
        return budget.max_epochs_cnn1d, budget.patience_cnn1d
    return None, None


# Parts --------------------------------------------------------------------------
@dataclass
class SeedParts:
    """The items of every protocol, before featurization.

    Attributes
    ----------
    leak : dict
        Per protocol, RAVDESS's ``train`` / ``val`` / ``test`` items (:mod:`training.seeds.leak`).
    all_corpora : dict
        Speaker-independent items of the training corpora (``train`` / ``val`` / ``test``,
        recordings only) and of the held-out corpora (``unseen_val``, ``unseen_test``).
    """

    leak: dict[str, dict[str, list[Item]]]
    all_corpora: dict[str, list[Item]]
    skipped: int = 0
    corpora: dict[str, int] = field(default_factory=dict)

    def items(self) -> list[Item]:
        """Every item to featurize, each once, sorted by id."""
        seen: dict[str, Item] = {}
        for parts in (*self.leak.values(), self.all_corpora):
            for v in parts.values():
                for it in v:
                    seen.setdefault(it.id, it)
        return [seen[k] for k in sorted(seen)]

    def parts_of(self, fit: PlannedFit) -> dict[str, list[Item]]:
        """Return the parts a fit trains, stops and is scored on (with the unseen parts when speaker-independent)."""
        unseen = {p: self.all_corpora[p] for p in ("unseen_val", "unseen_test")}
        if fit.corpora == ("ravdess",):
            parts = dict(self.leak[fit.protocol])
            if fit.recordings_only:
                parts["train"] = [it for it in parts["train"] if it.copy == 0]
            return {**parts, **unseen} if fit.protocol == "speaker_independent" else parts
        return dict(self.all_corpora)


def prepare_parts(*, root: Path, budget: Budget, split: Mapping[str, Any] | None = None) -> SeedParts:
    """Read the corpora and make the items of every protocol (no audio is decoded).

    Parameters
    ----------
    root : Path
        The corpus folder.
    budget : Budget
        ``copies``, ``limit`` and ``seed`` are used.
    split : mapping, optional
        The speaker split (default: the committed one).

    Returns
    -------
    SeedParts
    """
    from training.corpora import load_all
    from training.splits import assign, load_split

    chosen = dict(load_split() if split is None else split)
    clips, skipped = load_all(root=root, corpora=(*TRAINING_CORPORA, *HELD))
    assigned = assign(clips=clips, split=chosen)
    if budget.limit is not None:
        rng = np.random.default_rng(budget.seed)
        for p, v in assigned.items():
            kept = []
            for group in sorted({(c.corpus, c.label) for c in v}):
                mine = [c for c in v if (c.corpus, c.label) == group]
                kept += [mine[i] for i in sorted(rng.permutation(len(mine))[: budget.limit])]
            assigned[p] = kept
    ravdess = [c for p in ("train", "val", "test") for c in assigned[p] if c.corpus == "ravdess"]
    ravdess_split = {**chosen, "corpora": {"ravdess": chosen["corpora"]["ravdess"]}}
    leak: dict[str, dict[str, list[Item]]] = {}
    for protocol in PROTOCOLS:
        if protocol == "speaker_independent":
            leak[protocol] = speaker_independent_split(clips=ravdess, split=ravdess_split, copies=budget.copies)
        else:
            rng = np.random.default_rng(budget.seed)
            leak[protocol] = protocol_split(protocol, clips=ravdess, rng=rng, copies=budget.copies)
    all_corpora = {p: sorted((Item(c) for c in v), key=lambda it: it.id) for p, v in assigned.items()}
    counts: dict[str, int] = {}
    for c in clips:
        counts[c.corpus] = counts.get(c.corpus, 0) + 1
    return SeedParts(leak=leak, all_corpora=all_corpora, skipped=len(skipped), corpora=counts)


# The estimate -----------------------------------------------------------------------
def _fit_ms(fit: PlannedFit, n: Mapping[str, int], *, scored: int) -> float:
    """Upper bound of one fit's time in ms on the development machine (networks at their epoch limit)."""
    m = fit.run.model
    d = FEATURE_DIMS[fit.run.feature_set]
    if m == "decision_tree":
        return COST_MS["tree_fit_per_value"] * n["train"] * d
    if m == "knn":
        return COST_MS["knn_per_distance_value"] * n["train"] * d * (n["val"] + scored)
    train, pred = COST_MS[f"{m}_train"], COST_MS[f"{m}_predict"]
    epochs = fit.max_epochs or 1
    return COST_MS["keras_fit_overhead"] + epochs * (n["train"] * train + n["val"] * pred) + scored * pred


def estimate(*, plan: Sequence[PlannedFit], parts: SeedParts) -> dict[str, Any]:
    """Time of a plan, from :data:`COST_MS`: per fit and in total, here and on the target machine.

    Returns
    -------
    dict
        ``rows`` (per fit: name, stage, model, features, protocol, corpora, train / val / scored
        items, max epochs, minutes here), ``featurize_min``, ``fits_min``, ``total_min`` (this
        machine, upper bound: every network at its epoch limit), ``target_min`` (x
        :data:`TARGET_SLOWDOWN`), ``items`` (featurized: recordings, copies).
    """
    items = parts.items()
    copies = sum(1 for it in items if it.copy)
    featurize_ms = (COST_MS["featurize_recording"] * (len(items) - copies) + COST_MS["featurize_copy"] * copies) / 2
    rows: list[dict[str, Any]] = []
    for fit in plan:
        p = parts.parts_of(fit)
        n = {k: len(p[k]) for k in ("train", "val", "test")}
        scored = n["test"] + sum(len(p.get(k, [])) for k in ("unseen_val", "unseen_test"))
        ms = _fit_ms(fit, n, scored=scored)
        rows.append(
            {
                "name": fit.name,
                "stage": fit.stage,
                "model": fit.run.model,
                "features": fit.run.feature_set,
                "protocol": fit.protocol,
                "corpora": "ravdess" if fit.corpora == ("ravdess",) else f"{len(fit.corpora)} training corpora",
                "train": n["train"],
                "val": n["val"],
                "scored": scored,
                "max_epochs": fit.max_epochs,
                "minutes": ms / 60000,
            }
        )
    fits_min = sum(r["minutes"] for r in rows)
    total = featurize_ms / 60000 + fits_min
    return {
        "rows": rows,
        "featurize_min": featurize_ms / 60000,
        "fits_min": fits_min,
        "total_min": total,
        "target_min": total * TARGET_SLOWDOWN,
        "items": {"recordings": len(items) - copies, "copies": copies},
    }


def format_plan(*, estimate_: Mapping[str, Any], budget: Budget) -> str:
    """Render the plan and its time as ``ser-train seeds --dry-run`` prints it."""
    head = ["stage", "model", "features", "protocol", "corpora", "train", "val", "scored", "max ep.", "min"]
    rows = [head]
    for r in estimate_["rows"]:
        rows.append(
            [
                r["stage"] + (f"#{r['name'].split('#')[1]}" if "#" in r["name"] else ""),
                r["model"],
                r["features"],
                r["protocol"],
                r["corpora"],
                f"{r['train']:,}",
                f"{r['val']:,}",
                f"{r['scored']:,}",
                str(r["max_epochs"] or "-"),
                f"{r['minutes']:.1f}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for k, row in enumerate(rows):
        cells = (c.rjust(w) if i >= 5 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    it = estimate_["items"]
    lines += [
        "",
        f"{len(estimate_['rows'])} fits; featurized items: {it['recordings']:,} recordings + {it['copies']:,} "
        f"augmented copies ({budget.copies} per RAVDESS clip), 3 feature sets each",
        f"estimated time on this machine, upper bound (every network at its epoch limit): featurization "
        f"{estimate_['featurize_min']:.1f} min + fits {estimate_['fits_min']:.1f} min = "
        f"{estimate_['total_min']:.1f} min",
        f"on a 2-core machine without AVX2 (x{TARGET_SLOWDOWN:g}): {estimate_['target_min']:.0f} min (target 60)",
    ]
    return "\n".join(lines) + "\n"


# Scoring --------------------------------------------------------------------------
def uar_by_corpus(*, items: Sequence[Item], y_pred: npt.ArrayLike, labels: Sequence[str]) -> dict[str, float | None]:
    """UAR over clips: ``all`` (the items pooled) and per corpus.

    Parameters
    ----------
    items : sequence of Item
    y_pred : array_like, shape (len(items),)
        Predicted label indices.
    labels : sequence of str

    Returns
    -------
    dict
        ``{"all": uar, <corpus>: uar, ...}``; ``all`` is None for no items.
    """
    from training.seeds.systems import _uar

    index = {lab: i for i, lab in enumerate(labels)}
    yt = np.array([index[it.clip.label] for it in items], dtype=np.int64)
    yp = np.asarray(y_pred, dtype=np.int64)
    out: dict[str, float | None] = {"all": _uar(yt, yp, len(labels)) if len(yt) else None}
    corpus = np.array([it.clip.corpus for it in items])
    for c in sorted(set(corpus.tolist())):
        keep = corpus == c
        out[c] = _uar(yt[keep], yp[keep], len(labels))
    return out


# The run ------------------------------------------------------------------------------
def _views(plan: Sequence[PlannedFit]) -> list[Any]:
    from training.seeds.data import ViewSpec

    return list(dict.fromkeys(ViewSpec(f.run.feature_set, f.run.view, f.run.n_frames) for f in plan))


def _leak_table(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per model and features scored under every protocol on RAVDESS."""
    by: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}
    for r in runs:
        if r["stage"] == "leak":
            by.setdefault((r["model"], r["features"]), {})[r["protocol"]] = r
    rows = []
    for (model, feats), prot in by.items():
        if set(prot) != set(PROTOCOLS):
            continue
        si = prot["speaker_independent"]["uar"]["test"]["all"]
        row: dict[str, Any] = {"model": model, "features": feats}
        for p in PROTOCOLS:
            row[p] = prot[p]["uar"]["test"]["all"]
        row["augment_before_split_recordings"] = (
            prot["augment_before_split"]["uar"].get("test_recordings", {}).get("all")
        )
        for p in ("random", "augment_before_split"):
            row[f"points_{p}"] = None if row[p] is None or si is None else 100 * (row[p] - si)
        rows.append(row)
    return rows


def _selection(uar: Mapping[str, Any]) -> float:
    """Our selection score: mean UAR of the validation speakers and the unseen-corpus validation."""
    vals = [v for v in (uar.get("val"), (uar.get("unseen_val") or {}).get("all")) if v is not None]
    return float(np.mean(vals)) if vals else math.nan


class _SeedArrays:
    """A plan's items as arrays: each item's view of its features (one row per item) and its label index.

    Parameters
    ----------
    features : ItemFeatures
        What :func:`training.seeds.data.featurize_seed_items` returned for the plan's items.
    labels : sequence of str
        The label vocabulary (an item's label is its index in it).
    """

    def __init__(self, *, features: ItemFeatures, labels: Sequence[str]) -> None:
        self.features = features
        self._rows = {k: i for i, k in enumerate(features.ids)}
        self._index = {lab: i for i, lab in enumerate(labels)}

    def __call__(self, items: Sequence[Item], run: SeedRun) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Return ``x`` (shape (n_items, *view shape)) and ``y`` (shape (n_items,)) of ``run``'s view."""
        from training.seeds.data import ViewSpec

        key = ViewSpec(run.feature_set, run.view, run.n_frames).key
        x = self.features.views[key][np.array([self._rows[it.id] for it in items], dtype=np.int64)]
        return x, np.array([self._index[it.clip.label] for it in items], dtype=np.int64)


def _fit_and_score(
    *,
    fit: PlannedFit,
    parts: SeedParts,
    arrays: _SeedArrays,
    config: Mapping[str, Any] | None,
    labels: Sequence[str],
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit one planned model on its training part and score it on every other part it has.

    Items without speech are left out of every part. Returns the run's entry of
    ``results_seeds.json`` (its ``uar`` per part and corpus) and :func:`fit_seed`'s info.
    """
    from training.seeds.data import items_with_speech
    from training.seeds.systems import fit_seed

    p = items_with_speech(features=arrays.features, parts=parts.parts_of(fit))
    x_tr, y_tr = arrays(p["train"], fit.run)
    x_va, y_va = arrays(p["val"], fit.run)
    predict, info = fit_seed(
        model=fit.run.model,
        x_train=x_tr,
        y_train=y_tr,
        x_val=x_va,
        y_val=y_va,
        n_labels=len(labels),
        config=config,
        max_epochs=fit.max_epochs or 1,
        patience=fit.patience or 1,
        seed=seed,
    )
    uar: dict[str, Any] = {"val": info["val_uar"]}
    for part in ("test", "unseen_val", "unseen_test"):
        if part in p:
            x, _ = arrays(p[part], fit.run)
            uar[part] = uar_by_corpus(items=p[part], y_pred=predict(x), labels=labels)
    if fit.protocol == "augment_before_split":  # also on the test recordings alone, without their copies
        rec = [it for it in p["test"] if it.copy == 0]
        x, _ = arrays(rec, fit.run)
        uar["test_recordings"] = uar_by_corpus(items=rec, y_pred=predict(x), labels=labels)
    hist = info.get("history") or {}
    result = {
        "name": fit.name,
        "stage": fit.stage,
        "model": fit.run.model,
        "features": fit.run.feature_set,
        "view": fit.run.view,
        "input_shape": list(x_tr.shape[1:]),
        "protocol": fit.protocol,
        "train_corpora": list(fit.corpora),
        "copies": max((it.copy for it in p["train"]), default=0),
        "items": {k: len(v) for k, v in p.items()},
        "parameters": info["parameters"],
        "epochs_run": info["epochs_run"],
        "best_epoch": info["best_epoch"],
        "max_epochs": info["max_epochs"],
        "patience": fit.patience if info["max_epochs"] else None,
        "stopped": info["stopped"],
        "train_s": info["seconds"],
        "val_uar_per_epoch": hist.get("val_uar"),
        "config": info.get("config"),
        "trial": fit.trial,
        "uar": uar,
    }
    return result, info


def run_seeds(
    *,
    root: Path,
    run_dir: Path,
    budget: Budget,
    workers: int = 2,
    cache_dir: Path | None = None,
    command: str = "ser-train seeds",
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the plan of ``budget`` and write ``run_dir/results_seeds.json``.

    Parameters
    ----------
    root : Path
        The corpus folder.
    run_dir : Path
        Where ``results_seeds.json`` goes (``ser-train report`` reads it beside ``results.json``).
    budget : Budget
    workers : int
        Featurization processes.
    cache_dir : Path, optional
        Feature cache (default ``~/.cache/ser/features``).
    command : str
        Recorded in the results.
    log : callable
        Progress lines.
    progress : bool
        Progress bar while featurizing.

    Returns
    -------
    dict
        What the file holds: ``budget``, ``estimate``, ``feature_sets``, ``items``, ``runs``,
        ``leak_table``, ``search``, ``timings_min``, ``provenance``.
    """
    from training.corpora import HARMONISED_LABELS
    from training.seeds.data import featurize_seed_items

    t_start = time.perf_counter()
    labels = list(HARMONISED_LABELS)
    plan = make_plan(budget)
    parts = prepare_parts(root=root, budget=budget)
    est = estimate(plan=plan, parts=parts)
    log(f"plan: {len(plan)} fits, estimated at most {est['total_min']:.0f} min here, {est['target_min']:.0f} min at 2x")
    t0 = time.perf_counter()
    feats = featurize_seed_items(
        items=parts.items(),
        views=_views(plan),
        seed=budget.seed,
        workers=workers,
        cache_dir=cache_dir,
        progress=progress,
    )
    features_min = (time.perf_counter() - t0) / 60
    log(
        f"featurized {len(feats.ids) + len(feats.no_speech)} items in {features_min:.1f} min "
        f"({len(feats.no_speech)} without speech, dropped)"
    )
    arrays = _SeedArrays(features=feats, labels=labels)

    # The fits, in the plan's order: the search trials come before the all-corpora CNN + BiLSTM,
    # which takes the configuration the trials so far chose.
    configs = search_configs(n=budget.search_trials, rng=np.random.default_rng(budget.seed))
    runs: list[dict[str, Any]] = []
    trials: list[dict[str, Any]] = []
    best_config: dict[str, Any] = dict(BILSTM_DEFAULT)
    t_fits = time.perf_counter()
    for fit in plan:
        cfg = None
        if fit.run.model == "cnn_bilstm":  # search trials their own, all corpora the chosen one, else the seed's
            cfg = configs[fit.trial] if fit.trial is not None else best_config if fit.stage == "all" else None
        result, info = _fit_and_score(fit=fit, parts=parts, arrays=arrays, config=cfg, labels=labels, seed=budget.seed)
        runs.append(result)
        uar = result["uar"]
        if fit.trial is not None and fit.protocol == "speaker_independent":
            trials.append(
                {
                    "trial": fit.trial,
                    "config": info["config"],
                    "val_uar": uar["val"],
                    "unseen_val_uar": (uar.get("unseen_val") or {}).get("all"),
                    "score": _selection(uar),
                    "epochs_run": info["epochs_run"],
                }
            )
            best = max(trials, key=lambda t: -math.inf if math.isnan(t["score"]) else t["score"])
            best_config = dict(best["config"])
        log(
            f"{fit.name}: val UAR {100 * uar['val']:.1f} %, test UAR "
            f"{100 * (uar['test']['all'] or math.nan):.1f} %, {info['seconds']:.0f} s"
            + (f", {info['epochs_run']} epochs ({info['stopped']})" if info["epochs_run"] else "")
        )
    fits_min = (time.perf_counter() - t_fits) / 60

    results = _results_document(
        command=command,
        budget=budget,
        estimate_=est,
        labels=labels,
        features=feats,
        parts=parts,
        runs=runs,
        trials=trials,
        best_config=best_config,
        timings_min={"features": features_min, "fits": fits_min, "total": (time.perf_counter() - t_start) / 60},
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    from training.report import _finite

    path = run_dir / "results_seeds.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_finite(results), indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    log(f"wrote {path} ({results['timings_min']['total']:.1f} min)")
    return results


def _results_document(
    *,
    command: str,
    budget: Budget,
    estimate_: Mapping[str, Any],
    labels: list[str],
    features: ItemFeatures,
    parts: SeedParts,
    runs: list[dict[str, Any]],
    trials: list[dict[str, Any]],
    best_config: dict[str, Any],
    timings_min: dict[str, float],
) -> dict[str, Any]:
    """Assemble ``results_seeds.json`` from the run's parts (see :func:`run_seeds`)."""
    from training.seeds.data import SEED_FEATURES, seed_feature_config

    best_trial = max(range(len(trials)), key=lambda i: trials[i]["score"]) if trials else None
    return {
        "command": command,
        "quick": budget.limit is not None,
        "budget": asdict(budget),
        "estimate": {k: v for k, v in estimate_.items() if k != "rows"} | {"slowdown": TARGET_SLOWDOWN},
        "labels": labels,
        "feature_sets": {
            name: {
                "description": FEATURE_SETS[name],
                "config": {k: v for k, v in seed_feature_config(name).to_dict().items() if k not in ("mean", "std")},
                "per_frame": FEATURE_DIMS[name],
            }
            for name in SEED_FEATURES
        },
        "items": {
            "featurized": len(features.ids) + len(features.no_speech),
            "no_speech": len(features.no_speech),
            "skipped_files": parts.skipped,
            "clips_per_corpus": parts.corpora,
        },
        "runs": runs,
        "leak_table": _leak_table(runs),
        "search": {
            "corpus": "ravdess",
            "score": "mean of the UAR on the validation speakers and on the unseen-corpus validation (CASIA)",
            "trials": trials,
            "best_trial": None if best_trial is None else trials[best_trial]["trial"],
            "best_config": best_config,
        },
        "timings_min": timings_min,
        "provenance": {
            "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "held_out": {"unseen_val": ["casia"], "unseen_test": ["uem-es", "emotiontts-ko"]},
        },
    }

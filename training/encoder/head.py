"""Read-outs of the encoder vectors: 7 emotions, arousal and valence, chosen on validation only.

A window's vector is the concatenation of the chosen blocks' time-means
(:func:`block_vectors`), standardised with the training windows' mean and standard deviation.
Candidates (:func:`candidates`): logistic regression (class-balanced) on block 2, 3, 4 or 2+3
for each C of :data:`C_GRID`, and an MLP with one hidden layer of 256 on the best logistic
regression's blocks. A clip's probabilities are the mean of its windows' (as ``ser analyze``).

Selection (:func:`select_head`) reads the training windows to fit and the validation parts to
score, nothing else: the unseen-corpus validation (:data:`training.splits.HELD_OUT`
``unseen_val``) first, the validation speakers second (:data:`TIE_BAND`). The affect read-outs
(:data:`AFFECT_AXES`) are two binary logistic regressions on the same standardised vector, their
C chosen by the same rule and a temperature each fitted on the validation clips.
Every head is kept as dense layers with the standardisation folded into the first
(:class:`DenseHead`), the form the ONNX graph takes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.errors import ParameterError
from training.corpora import Clip
from training.crosscorpus import per_corpus_metrics
from training.evaluate import classification_metrics, clip_probabilities, fit_temperature
from training.features import WindowSet

__all__ = [
    "AFFECT_AXES",
    "BLOCK_SETS",
    "C_GRID",
    "TIE_BAND",
    "AffectAxis",
    "Candidate",
    "DenseHead",
    "EncoderHead",
    "Selection",
    "VoiceHead",
    "affect_metrics",
    "affect_targets",
    "binary_metrics",
    "block_vectors",
    "candidates",
    "derived_affect_probs",
    "fit_affect",
    "fit_candidate",
    "select_head",
]

BLOCK_SETS: tuple[tuple[int, ...], ...] = ((2,), (3,), (4,), (2, 3))
"""Encoder blocks (1-based) a candidate reads; (2, 3) concatenates the two."""
C_GRID: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1)
"""Inverse regularisation strengths of the logistic regressions."""
MLP_HIDDEN = 256
MLP_ALPHA = 1e-3
TIE_BAND = 0.01
"""Candidates within this much unseen-corpus validation UAR of the best are tied; the
validation speakers' UAR decides among them."""
MAX_ITER = 1000
DISABLED_BIAS = -30.0
"""Bias of an output whose class the training windows lack (never chosen)."""

FloatArray = npt.NDArray[np.float64]
Log = Callable[[str], None]


@dataclass(frozen=True)
class AffectAxis:
    """A binary affect dimension: which emotions count as its positive and negative side.

    Attributes
    ----------
    name : str
        ``"arousal"`` or ``"valence"``.
    positive, negative : tuple of str
        Emotions on the side of a positive logit and of a negative logit; the others
        are left out of its training and scoring.
    names : tuple of str
        The two sides' names, negative first (``("low", "high")``).
    """

    name: str
    positive: tuple[str, ...]
    negative: tuple[str, ...]
    names: tuple[str, str]


AFFECT_AXES: tuple[AffectAxis, ...] = (
    AffectAxis("arousal", ("angry", "fearful", "happy", "surprised"), ("neutral", "sad"), ("low", "high")),
    AffectAxis("valence", ("happy", "surprised"), ("angry", "fearful", "sad", "disgust"), ("negative", "positive")),
)
"""Arousal: high = angry, fearful, happy, surprised; low = neutral, sad (disgust left out).
Valence: positive = happy, surprised; negative = angry, fearful, sad, disgust (neutral left out)."""


def affect_targets(*, clips: Sequence[Clip], axis: AffectAxis) -> npt.NDArray[np.int64]:
    """Return 1 (positive side), 0 (negative side) or -1 (left out) per clip, shape (n_clips,)."""
    return np.array(
        [1 if c.label in axis.positive else 0 if c.label in axis.negative else -1 for c in clips], dtype=np.int64
    )


def block_vectors(*, block_means: npt.ArrayLike, blocks: Sequence[int]) -> npt.NDArray[np.float32]:
    """Concatenate the chosen blocks' vectors.

    Parameters
    ----------
    block_means : array_like, shape (n_windows, n_blocks, d_model)
        Time-means of the encoder blocks 1..n_blocks.
    blocks : sequence of int
        1-based block numbers, in the order they are concatenated.

    Returns
    -------
    ndarray, shape (n_windows, len(blocks) * d_model), float32
    """
    x = np.asarray(block_means)
    if x.ndim != 3:
        raise ParameterError(f"block means must have shape (n, n_blocks, d_model), got {x.shape}")
    if not blocks or min(blocks) < 1 or max(blocks) > x.shape[1]:
        raise ParameterError(f"blocks {tuple(blocks)} are not all within 1..{x.shape[1]}")
    sel = x[:, [b - 1 for b in blocks], :].astype(np.float32)
    return sel.reshape(x.shape[0], -1)


@dataclass(frozen=True)
class DenseHead:
    """Dense layers (ReLU between them) on the raw block vectors; standardisation folded in.

    Attributes
    ----------
    blocks : tuple of int
        1-based encoder blocks read (:func:`block_vectors`).
    weights : tuple of ndarray
        Per layer, shape (n_in, n_out), float64.
    biases : tuple of ndarray
        Per layer, shape (n_out,), float64.
    """

    blocks: tuple[int, ...]
    weights: tuple[FloatArray, ...]
    biases: tuple[FloatArray, ...]

    @property
    def n_out(self) -> int:
        """Outputs of the last layer."""
        return int(self.biases[-1].shape[0])

    @property
    def max_block(self) -> int:
        """Highest block read: the embedder must run this many blocks."""
        return max(self.blocks)

    def __call__(self, block_means: npt.ArrayLike) -> FloatArray:
        """Compute the outputs for windows.

        Parameters
        ----------
        block_means : array_like, shape (n_windows, n_blocks >= max_block, d_model)

        Returns
        -------
        ndarray, shape (n_windows, n_out), float64
        """
        h = block_vectors(block_means=block_means, blocks=self.blocks).astype(np.float64)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return h

    @classmethod
    def fold(
        cls,
        *,
        blocks: Sequence[int],
        mean: npt.ArrayLike,
        std: npt.ArrayLike,
        weights: Sequence[npt.ArrayLike],
        biases: Sequence[npt.ArrayLike],
    ) -> DenseHead:
        """Build a head whose layers act on standardised vectors ``(x - mean) / std``.

        Parameters
        ----------
        blocks : sequence of int
        mean, std : array_like, shape (n_in,)
        weights : sequence of array_like, each (n_in, n_out) of its layer
        biases : sequence of array_like, each (n_out,)

        Returns
        -------
        DenseHead
            The same function of the raw vectors: ``W0 / std[:, None]`` and
            ``b0 - (mean / std) @ W0``.
        """
        mu = np.asarray(mean, dtype=np.float64)
        sd = np.asarray(std, dtype=np.float64)
        ws = [np.asarray(w, dtype=np.float64) for w in weights]
        bs = [np.asarray(b, dtype=np.float64) for b in biases]
        w0 = ws[0] / sd[:, None]
        b0 = bs[0] - (mu / sd) @ ws[0]
        return cls(blocks=tuple(int(b) for b in blocks), weights=(w0, *ws[1:]), biases=(b0, *bs[1:]))


@dataclass(frozen=True)
class VoiceHead:
    """The voice calibration head: emotions read from a vector minus its speaker's centre.

    Fitted on each training speaker's windows minus the mean of all that speaker's speech
    (:func:`training.encoder.voice.fit_voice_head`). A new voice's centre is estimated from
    its profile of neutral speech plus the training speakers' typical offset from neutral speech
    to all their speech, so a calibrated window's logits are ``head(x) - head(profile mean) +
    reference``, which is what the engine computes from the graph's ``voice_logits`` output.

    Attributes
    ----------
    head : DenseHead
        One layer, on the same blocks as the emotion head; its logits of raw vectors.
    reference : ndarray, shape (n_labels,)
        ``b - offset @ W``: what the head's logits of a profile's mean are moved to.
    offset : ndarray, shape (n_in,)
        Mean over training speakers of (all speech mean - neutral speech mean), raw vectors.
    """

    head: DenseHead
    reference: FloatArray
    offset: FloatArray


@dataclass(frozen=True)
class EncoderHead:
    """The emotion head and the affect head of the shipped model, and its voice calibration head.

    Attributes
    ----------
    emotion : DenseHead
        7 logits.
    affect : DenseHead
        One layer, 2 logits (arousal: positive = high; valence: positive = positive), on the
        same blocks.
    voice : VoiceHead, optional
        The speaker-centred head a voice profile blends in (same blocks).
    """

    emotion: DenseHead
    affect: DenseHead
    voice: VoiceHead | None = None

    def __post_init__(self) -> None:
        if self.emotion.blocks != self.affect.blocks:
            raise ParameterError("the emotion and affect heads must read the same blocks")
        if self.voice is not None and self.voice.head.blocks != self.emotion.blocks:
            raise ParameterError("the voice calibration head must read the emotion head's blocks")

    @property
    def n_blocks(self) -> int:
        """Encoder blocks the embedder must run (the highest block read)."""
        return self.emotion.max_block


@dataclass(frozen=True)
class Candidate:
    """One read-out to try.

    Attributes
    ----------
    kind : str
        ``"logreg"`` or ``"mlp"``.
    blocks : tuple of int
    c : float
        Inverse regularisation (logistic regression) ; for the MLP, 1 / its L2 ``alpha``.
    """

    kind: str
    blocks: tuple[int, ...]
    c: float

    @property
    def name(self) -> str:
        """Short description, e.g. ``logreg b2+3 C=0.01``."""
        b = "b" + "+".join(str(x) for x in self.blocks)
        return f"{self.kind} {b} C={self.c:g}" if self.kind == "logreg" else f"mlp{MLP_HIDDEN} {b} alpha={1 / self.c:g}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"kind": self.kind, "blocks": list(self.blocks), "C": self.c, "name": self.name}


def candidates() -> list[Candidate]:
    """Return the logistic-regression candidates (the MLP is added on the best one's blocks)."""
    return [Candidate("logreg", b, c) for b in BLOCK_SETS for c in C_GRID]


def _standardizer(x: npt.NDArray[np.float32]) -> tuple[FloatArray, FloatArray]:
    mean = x.mean(axis=0, dtype=np.float64)
    std = np.sqrt(np.maximum(x.var(axis=0, dtype=np.float64), 1e-12))
    return mean, np.maximum(std, 1e-6)


def _balanced_weights(y: npt.NDArray[np.int64]) -> FloatArray:
    classes, counts = np.unique(y, return_counts=True)
    per = {int(c): y.size / (classes.size * n) for c, n in zip(classes, counts, strict=True)}
    return np.array([per[int(v)] for v in y], dtype=np.float64)


def _full_rows(
    classes: npt.ArrayLike, coef: npt.ArrayLike, intercept: npt.ArrayLike, n_out: int
) -> tuple[FloatArray, FloatArray]:
    """Spread a fitted model's rows over all ``n_out`` outputs: (n_in, n_out) weights, (n_out,) biases.

    Absent classes get zero weights and :data:`DISABLED_BIAS`; a two-class model's single row
    becomes the second class's logit against 0 for the first (the same softmax).
    """
    cls_ = np.asarray(classes, dtype=np.int64)
    w = np.asarray(coef, dtype=np.float64)
    b = np.asarray(intercept, dtype=np.float64).reshape(-1)
    if w.shape[0] == 1 and cls_.size == 2:
        w = np.vstack([np.zeros_like(w), w])
        b = np.array([0.0, b[0]])
    out_w = np.zeros((w.shape[1], n_out))
    out_b = np.full(n_out, DISABLED_BIAS)
    out_w[:, cls_] = w.T
    out_b[cls_] = b
    return out_w, out_b


@dataclass
class _Prepared:
    """Standardised training vectors of one block set."""

    blocks: tuple[int, ...]
    x: npt.NDArray[np.float32]
    mean: FloatArray
    std: FloatArray


def _prepare(train: WindowSet, blocks: tuple[int, ...]) -> _Prepared:
    x = block_vectors(block_means=train.features, blocks=blocks)
    mean, std = _standardizer(x)
    z = ((x - mean) / std).astype(np.float32)
    return _Prepared(blocks=blocks, x=z, mean=mean, std=std)


def fit_candidate(
    cand: Candidate, *, prep: _Prepared, y: npt.NDArray[np.int64], n_out: int, seed: int = 0,
    warm: Any = None,
) -> tuple[DenseHead, Any]:
    """Fit one candidate on standardised training windows.

    Parameters
    ----------
    cand : Candidate
    prep : _Prepared
        Standardised training vectors of ``cand.blocks``.
    y : ndarray, shape (n_windows,)
        Class of each training window (index into the labels).
    n_out : int
        Outputs of the head (all labels, even those absent from ``y``).
    seed : int
    warm : estimator, optional
        A logistic regression of the same blocks to start from (the C path).

    Returns
    -------
    head : DenseHead
    estimator : the fitted scikit-learn estimator
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    if cand.blocks != prep.blocks:
        raise ParameterError(f"candidate blocks {cand.blocks} differ from the prepared {prep.blocks}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if cand.kind == "logreg":
            est = warm if warm is not None else LogisticRegression(
                class_weight="balanced", max_iter=MAX_ITER, warm_start=True
            )
            est.set_params(C=cand.c)
            est.fit(prep.x, y)
            w, b = _full_rows(est.classes_, est.coef_, est.intercept_, n_out)
            return DenseHead.fold(blocks=cand.blocks, mean=prep.mean, std=prep.std, weights=[w], biases=[b]), est
        if cand.kind == "mlp":
            est = MLPClassifier(
                hidden_layer_sizes=(MLP_HIDDEN,), alpha=1.0 / cand.c, early_stopping=True, max_iter=200,
                random_state=seed, batch_size=min(256, max(1, (9 * len(y)) // 10 - 1)), n_iter_no_change=8,
            )
            est.fit(prep.x, y, sample_weight=_balanced_weights(y))
            w_out, b_out = _full_rows(est.classes_, est.coefs_[1].T, est.intercepts_[1], n_out)
            head = DenseHead.fold(
                blocks=cand.blocks, mean=prep.mean, std=prep.std,
                weights=[est.coefs_[0], w_out], biases=[est.intercepts_[0], b_out],
            )
            return head, est
    raise ParameterError(f"unknown candidate kind {cand.kind!r}")


def _window_labels(ws: WindowSet, labels: Sequence[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    index = {lab: i for i, lab in enumerate(labels)}
    y_clip = np.array([index[c.label] for c in ws.clips], dtype=np.int64)
    return y_clip, y_clip[ws.clip_index]


def _mean_corpus_uar(metrics: dict[str, Any]) -> float:
    """Mean UAR over the corpora of a :func:`training.crosscorpus.per_corpus_metrics` result."""
    uars = [v["uar"] for k, v in metrics.items() if not k.startswith("_") and k != "all"]
    return float(np.mean(uars)) if uars else float("nan")


def _score(head: DenseHead, ws: WindowSet, labels: Sequence[str]) -> tuple[float, dict[str, float]]:
    m = per_corpus_metrics(logits=head(ws.features), windows=ws, labels=labels, temperature=1.0)
    return _mean_corpus_uar(m), {k: float(v["uar"]) for k, v in m.items() if not k.startswith("_")}


def _choose(rows: list[dict[str, Any]]) -> int:
    """Index of the chosen row: best unseen-corpus validation UAR, ties (within TIE_BAND) by validation speakers."""

    def val(r: dict[str, Any], key: str) -> float:
        x = float(r[key])
        return -1.0 if np.isnan(x) else x

    best = max(val(r, "unseen_val_uar") for r in rows)
    tied = [i for i, r in enumerate(rows) if val(r, "unseen_val_uar") >= best - TIE_BAND]
    return max(tied, key=lambda i: (val(rows[i], "val_uar"), val(rows[i], "unseen_val_uar"), -i))


@dataclass
class Selection:
    """The result of :func:`select_head`.

    Attributes
    ----------
    head : EncoderHead
    candidate : Candidate
        The emotion read-out chosen.
    table : list of dict
        Every candidate's validation figures (``unseen_val_uar``: mean over the unseen
        validation corpora; ``val_uar``: validation speakers, pooled), in fitting order.
    affect_table : dict
        Per axis, the C tried and their validation binary UAR, and the chosen C.
    affect_temperature : tuple of float
        Arousal and valence temperatures (probability = sigmoid(logit / t)).
    train_windows : int
    """

    head: EncoderHead
    candidate: Candidate
    table: list[dict[str, Any]]
    affect_table: dict[str, Any]
    affect_temperature: tuple[float, float]
    train_windows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form (without the weights)."""
        return {
            "candidate": self.candidate.to_dict(),
            "table": self.table,
            "affect": self.affect_table,
            "affect_temperature": list(self.affect_temperature),
            "train_windows": self.train_windows,
            "rule": f"highest mean UAR on the unseen-corpus validation; candidates within {TIE_BAND:g} of it "
            "are ranked by the validation speakers' UAR",
        }


def affect_metrics(
    *, logits: npt.ArrayLike, ws: WindowSet, axis: AffectAxis, temperature: float = 1.0
) -> dict[str, Any]:
    """Binary clip-level metrics of one affect axis.

    Parameters
    ----------
    logits : array_like, shape (n_windows,)
        The axis's window logits (positive side > 0).
    ws : WindowSet
    axis : AffectAxis
    temperature : float

    Returns
    -------
    dict
        ``"all"`` and per corpus: :func:`training.evaluate.classification_metrics` over the
        clips of the axis's emotions (UAR over the two sides, ECE of the two-way probabilities).
    """
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    two = np.stack([np.zeros_like(z), z], axis=1)
    probs = clip_probabilities(window_logits=two, clip_index=ws.clip_index, n_clips=len(ws.clips),
                               temperature=temperature)
    return binary_metrics(probs=probs, clips=ws.clips, axis=axis)


def derived_affect_probs(probs: npt.ArrayLike, *, labels: Sequence[str], axis: AffectAxis) -> FloatArray:
    """Two-way clip probabilities of an axis from 7-class ones: each side's share of the two sides' mass.

    Parameters
    ----------
    probs : array_like, shape (n_clips, n_labels)
    labels : sequence of str
    axis : AffectAxis

    Returns
    -------
    ndarray, shape (n_clips, 2): negative side, positive side
    """
    p = np.asarray(probs, dtype=np.float64)
    pos = p[:, [i for i, lab in enumerate(labels) if lab in axis.positive]].sum(axis=1)
    neg = p[:, [i for i, lab in enumerate(labels) if lab in axis.negative]].sum(axis=1)
    total = np.maximum(pos + neg, 1e-12)
    return np.stack([neg / total, pos / total], axis=1)


def binary_metrics(*, probs: npt.ArrayLike, clips: Sequence[Clip], axis: AffectAxis) -> dict[str, Any]:
    """Binary metrics of two-way clip probabilities on the clips of the axis's emotions.

    Parameters
    ----------
    probs : array_like, shape (n_clips, 2)
        Negative side, positive side (NaN rows: clips without windows).
    clips : sequence of Clip
    axis : AffectAxis

    Returns
    -------
    dict
        ``"all"`` and per corpus: :func:`training.evaluate.classification_metrics`.
    """
    probs = np.asarray(probs, dtype=np.float64)
    t = affect_targets(clips=clips, axis=axis)
    ok = (t >= 0) & ~np.isnan(probs[:, 0])
    corpus = np.array([c.corpus for c in clips])
    out: dict[str, Any] = {}
    for name in ["all", *sorted(set(corpus[ok]))]:
        sel = ok if name == "all" else ok & (corpus == name)
        if sel.any():
            out[name] = classification_metrics(
                y_true=t[sel], y_pred=probs[sel].argmax(axis=1), labels=list(axis.names), probs=probs[sel]
            )
    return out


def fit_affect(
    *, prep: _Prepared, train: WindowSet, axis: AffectAxis, c: float
) -> tuple[FloatArray, float]:
    """Fit one axis's binary logistic regression (class-balanced) on the standardised training windows.

    Returns
    -------
    w : ndarray, shape (n_in,)
        Weights on the standardised vector.
    b : float
    """
    from sklearn.linear_model import LogisticRegression

    t = affect_targets(clips=train.clips, axis=axis)[train.clip_index]
    keep = t >= 0
    if np.unique(t[keep]).size < 2:
        return np.zeros(prep.x.shape[1]), 0.0
    est = LogisticRegression(C=c, class_weight="balanced", max_iter=MAX_ITER)
    est.fit(prep.x[keep], t[keep])
    return np.asarray(est.coef_[0], dtype=np.float64), float(est.intercept_[0])


def _affect_temperature(*, logits: FloatArray, ws: WindowSet, axis: AffectAxis) -> float:
    t = affect_targets(clips=ws.clips, axis=axis)
    keep = t >= 0
    if not keep.any():
        return 1.0
    sub = ws.subset_clips(keep)
    z = logits[np.isin(ws.clip_index, np.flatnonzero(keep))]
    two = np.stack([np.zeros_like(z), z], axis=1)
    return fit_temperature(window_logits=two, clip_index=sub.clip_index, n_clips=len(sub.clips), y_true=t[keep])


def select_head(
    *, parts: dict[str, WindowSet], labels: Sequence[str], with_mlp: bool = True, seed: int = 0, log: Log = print
) -> Selection:
    """Fit every candidate on the training windows and choose on validation.

    Parameters
    ----------
    parts : dict of str to WindowSet
        Vectors per split part (:data:`training.splits.PARTS`); only ``train``, ``val`` and
        ``unseen_val`` are read (the test parts may be present: they are not touched).
    labels : sequence of str
        The emotion labels, in output order.
    with_mlp : bool
        Also try the MLP on the best logistic regression's blocks.
    seed : int
    log : callable

    Returns
    -------
    Selection
    """
    train, val, unseen = parts["train"], parts["val"], parts["unseen_val"]
    if not len(train):
        raise ParameterError("no training windows")
    _, y_train = _window_labels(train, labels)
    n_out = len(labels)
    rows: list[dict[str, Any]] = []
    heads: list[DenseHead] = []
    cands: list[Candidate] = []
    prepared: dict[tuple[int, ...], _Prepared] = {}

    def score(cand: Candidate, head: DenseHead, est: Any) -> None:
        u, u_detail = _score(head, unseen, labels) if len(unseen) else (float("nan"), {})
        v, v_detail = _score(head, val, labels) if len(val) else (float("nan"), {})
        v_all = v_detail.get("all", float("nan"))
        rows.append({
            **cand.to_dict(),
            "unseen_val_uar": round(u, 4),
            "unseen_val": {k: round(x, 4) for k, x in u_detail.items()},
            "val_uar": round(v_all, 4),
            "val_mean_corpus_uar": round(v, 4),
            "n_iter": int(np.max(getattr(est, "n_iter_", [0]))),
        })
        heads.append(head)
        cands.append(cand)
        log(f"head {cand.name}: unseen-corpus validation UAR {u:.4f}, validation speakers UAR {v_all:.4f}")

    for blocks in BLOCK_SETS:
        prepared[blocks] = prep = _prepare(train, blocks)
        est: Any = None
        for c in C_GRID:
            cand = Candidate("logreg", blocks, c)
            head, est = fit_candidate(cand, prep=prep, y=y_train, n_out=n_out, seed=seed, warm=est)
            score(cand, head, est)
    if with_mlp:
        best_lr = cands[_choose(rows)]
        cand = Candidate("mlp", best_lr.blocks, 1.0 / MLP_ALPHA)
        head, est = fit_candidate(cand, prep=prepared[best_lr.blocks], y=y_train, n_out=n_out, seed=seed)
        score(cand, head, est)
    chosen = _choose(rows)
    cand, emotion = cands[chosen], heads[chosen]
    rows[chosen]["chosen"] = True
    log(f"chosen head: {cand.name}")

    # affect: same blocks and standardisation, C by the same rule, temperature on validation
    prep = prepared[cand.blocks]
    sel_ws = val.concat(unseen)
    ws_list, bs_list, temps, affect_table = [], [], [], {}
    for axis in AFFECT_AXES:
        arows: list[dict[str, Any]] = []
        fits = []
        for c in C_GRID:
            w, b = fit_affect(prep=prep, train=train, axis=axis, c=c)
            fits.append((w, b))
            one = DenseHead.fold(blocks=cand.blocks, mean=prep.mean, std=prep.std, weights=[w[:, None]],
                                 biases=[np.array([b])])
            u = _mean_binary_uar(one, unseen, axis)
            v = _mean_binary_uar(one, val, axis, pooled=True)
            arows.append({"C": c, "unseen_val_uar": round(u, 4), "val_uar": round(v, 4)})
        k = _choose(arows)
        arows[k]["chosen"] = True
        w, b = fits[k]
        one = DenseHead.fold(blocks=cand.blocks, mean=prep.mean, std=prep.std, weights=[w[:, None]],
                             biases=[np.array([b])])
        temp = _affect_temperature(logits=one(sel_ws.features)[:, 0], ws=sel_ws, axis=axis)
        affect_table[axis.name] = {"C": C_GRID[k], "table": arows, "temperature": temp}
        log(f"{axis.name}: C={C_GRID[k]:g}, validation binary UAR {arows[k]['unseen_val_uar']:.4f} (unseen) / "
            f"{arows[k]['val_uar']:.4f} (speakers), temperature {temp:.3f}")
        ws_list.append(w)
        bs_list.append(b)
        temps.append(temp)
    affect = DenseHead.fold(blocks=cand.blocks, mean=prep.mean, std=prep.std, weights=[np.stack(ws_list, axis=1)],
                            biases=[np.array(bs_list)])
    return Selection(
        head=EncoderHead(emotion=emotion, affect=affect),
        candidate=cand,
        table=rows,
        affect_table=affect_table,
        affect_temperature=(float(temps[0]), float(temps[1])),
        train_windows=len(train),
    )


def _mean_binary_uar(head: DenseHead, ws: WindowSet, axis: AffectAxis, *, pooled: bool = False) -> float:
    if not len(ws):
        return float("nan")
    m = affect_metrics(logits=head(ws.features)[:, 0], ws=ws, axis=axis)
    if pooled:
        return float(m["all"]["uar"]) if "all" in m else float("nan")
    uars = [v["uar"] for k, v in m.items() if k != "all"]
    return float(np.mean(uars)) if uars else float("nan")

"""Writing ``docs/results.md``, ``docs/results.json``, confusion-matrix PNGs and ``models/MODEL_CARD.md``.

Everything is rendered from the ``results`` dict that :func:`training.pipeline.run_all`
writes to ``<run>/results.json`` (``ser-train report`` re-renders from that file).
No figure is written here that is not read from that dict; a part a run did not
produce (a tiny run without an unseen-corpus test, no voice-calibration speakers...)
is shown as "not evaluated" rather than failing.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.corpora import CORPUS_INFO
from training.evaluate import plot_confusion
from training.splits import HELD_OUT

__all__ = [
    "TARGETS",
    "CorpusRow",
    "LanguageRow",
    "TargetCheck",
    "check_targets",
    "corpus_rows",
    "language_rows",
    "seed_systems_section",
    "write_model_card",
    "write_results",
]

TARGETS: dict[str, float] = {
    "unseen_test_uar": 0.55,
    "unseen_test_uar_k2": 0.65,
    "uar_crema": 0.65,
    "uar_ravdess8": 0.72,
    "ece_test": 0.05,
    "ece_unseen_test": 0.10,
    "size_mb": 10.0,
    "latency_ms": 2.0,
}
"""The shipped model's targets (fractions for UAR/ECE, MB, ms); :func:`check_targets` measures them."""

ROLE = {
    "test": "test speakers",
    "unseen_val": "unseen corpus, validation (used for selection)",
    "unseen_test": "unseen corpus, test",
}
PART_NAME = {
    "val": "validation speakers",
    "test": "test speakers",
    "unseen_val": "unseen-corpus validation",
    "unseen_test": "unseen-corpus test",
}
NOT_EVALUATED = "not evaluated"


# Small helpers ------------------------------------------------------------------
def _num(v: Any) -> float | None:
    """``v`` as a finite float, else None (missing, NaN, not a number)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):  # numbers.Real: also numpy scalars
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _get(d: Any, *keys: Any) -> Any:
    """``d[k1][k2]...`` or None when any level is missing."""
    for k in keys:
        if (isinstance(d, dict) and k in d) or (isinstance(d, list) and isinstance(k, int) and -len(d) <= k < len(d)):
            d = d[k]
        else:
            return None
    return d


def _pct(v: Any) -> str:
    f = _num(v)
    return "–" if f is None else f"{100 * f:.1f}"


def _pct_u(v: Any) -> str:
    """Percentage with its unit, or "–"."""
    f = _num(v)
    return "–" if f is None else f"{100 * f:.1f} %"


def _mean(values: Iterable[Any]) -> float | None:
    nums = [f for f in (_num(v) for v in values) if f is not None]
    return sum(nums) / len(nums) if nums else None


def _delta(a: Any, b: Any) -> str:
    fa, fb = _num(a), _num(b)
    return "–" if fa is None or fb is None else f"{100 * (fb - fa):+.1f}"


def _language(corpus: str) -> str:
    info = CORPUS_INFO.get(corpus)
    return info.language if info is not None else "?"


def _base_language(language: str) -> str:
    """"English (US)" -> "English"."""
    return language.split(" (")[0].strip()


def _order(corpora: Iterable[str]) -> list[str]:
    """Corpus names in the order of :data:`CORPUS_INFO` (unknown ones last, sorted)."""
    known = list(CORPUS_INFO)
    return sorted(set(corpora), key=lambda c: (known.index(c) if c in known else len(known), c))


def _corpora_of(metrics: Any) -> list[str]:
    """Return the per-corpus keys of a ``{"all": ..., corpus: ...}`` dict."""
    if not isinstance(metrics, dict):
        return []
    return _order(k for k, v in metrics.items() if k != "all" and isinstance(v, dict))


def _held_out(results: dict[str, Any]) -> dict[str, list[str]]:
    held = results.get("held_out") or _get(results, "provenance", "held_out_corpora")
    if not isinstance(held, dict):
        held = {k: list(v) for k, v in HELD_OUT.items()}
    return {p: list(held.get(p, [])) for p in ("unseen_val", "unseen_test")}


def _is_quick(results: dict[str, Any], quick: bool) -> bool:
    return quick or "--quick" in str(_get(results, "provenance", "command") or "")


def _shipped(results: dict[str, Any]) -> dict[str, Any]:
    return _get(results, "models", "cnn2d") or {}


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _finite(obj: Any) -> Any:
    """Return a JSON-safe copy: NaN/inf -> None (``docs/results.json`` is strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        f = float(obj)
        return f if math.isfinite(f) else None
    if hasattr(obj, "tolist"):  # numpy arrays
        return _finite(obj.tolist())
    return str(obj)


# Targets ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TargetCheck:
    """One target of :data:`TARGETS` and its measured value.

    Attributes
    ----------
    key : str
        Key of :data:`TARGETS`.
    name : str
        What is measured, on which data.
    goal : str
        The goal as shown (``">= 55 %"``).
    value : float or None
        The measured value (fraction for UAR/ECE, MB, ms); None when the run did not measure it.
    unit : str
        ``"%"``, ``"MB"`` or ``"ms"``.
    met : bool or None
        None when not evaluated.
    """

    key: str
    name: str
    goal: str
    value: float | None
    unit: str
    met: bool | None

    @property
    def measured(self) -> str:
        """The measured value as the report's table shows it."""
        if self.value is None:
            return NOT_EVALUATED
        if self.unit == "%":
            return f"{100 * self.value:.1f} %"
        return f"{self.value:.2f} {self.unit}"

    @property
    def verdict(self) -> str:
        """The verdict column: met, not met, or not evaluated."""
        return NOT_EVALUATED if self.met is None else ("met" if self.met else "**not met**")


def _check(key: str, name: str, goal: str, value: float | None, unit: str, *, at_most: bool) -> TargetCheck:
    limit = TARGETS[key]
    met = None if value is None else (value <= limit if at_most else value >= limit)
    return TargetCheck(key=key, name=name, goal=goal, value=value, unit=unit, met=met)


def _corpus_mean_uar(metrics: Any) -> float | None:
    return _mean(_get(metrics, c, "uar") for c in _corpora_of(metrics))


def check_targets(*, results: dict[str, Any]) -> list[TargetCheck]:
    """Measure the eight targets of :data:`TARGETS`, each from ``results``.

    "Mean UAR over its corpora" is the mean of the per-corpus UARs of the
    unseen-test corpora (not the UAR of their pooled clips).

    Parameters
    ----------
    results : dict
        The pipeline's results (``results.json``).

    Returns
    -------
    list of TargetCheck
        Eight entries, in the order of :data:`TARGETS`.
    """
    shipped = _shipped(results)
    size = _num(_get(results, "export", "size_bytes"))
    k2 = _get(results, "voice_calibration", "eval", "unseen_test", "k2", "calibrated")
    ece_test = _num(_get(results, "calibration", "ece_after", "test", "all"))
    if ece_test is None:
        ece_test = _num(_get(shipped, "test", "all", "ece"))
    ece_unseen = _num(_get(results, "calibration", "ece_after", "unseen_test", "all"))
    if ece_unseen is None:
        ece_unseen = _num(_get(shipped, "unseen_test", "all", "ece"))
    return [
        _check(
            "unseen_test_uar",
            "unseen-corpus test: mean UAR over its corpora, zero-shot",
            ">= 55 %",
            _corpus_mean_uar(shipped.get("unseen_test")),
            "%",
            at_most=False,
        ),
        _check(
            "unseen_test_uar_k2",
            "unseen-corpus test: mean UAR over its corpora, calibrated on two neutral clips per speaker (k=2)",
            ">= 65 %",
            _corpus_mean_uar(k2),
            "%",
            at_most=False,
        ),
        _check(
            "uar_crema",
            "CREMA-D test speakers, 7-class UAR",
            ">= 65 %",
            _num(_get(shipped, "test", "crema-d", "uar")),
            "%",
            at_most=False,
        ),
        _check(
            "uar_ravdess8",
            "RAVDESS test actors, 8-class UAR",
            ">= 72 %",
            _num(_get(results, "ravdess8", "test", "all", "uar")),
            "%",
            at_most=False,
        ),
        _check("ece_test", "ECE after temperature, test speakers (all)", "<= 5 %", ece_test, "%", at_most=True),
        _check(
            "ece_unseen_test",
            "ECE after temperature, unseen-corpus test (zero-shot, clips pooled)",
            "<= 10 %",
            ece_unseen,
            "%",
            at_most=True,
        ),
        _check("size_mb", "model size (shipped ONNX)", "<= 10 MB", None if size is None else size / 1e6, "MB",
               at_most=True),
        _check(
            "latency_ms",
            "one 3 s window, ONNX Runtime, one core",
            "<= 2 ms",
            _num(_get(results, "export", "latency_ms_1thread")),
            "ms",
            at_most=True,
        ),
    ]


# Per corpus / per language -------------------------------------------------------------
@dataclass(frozen=True)
class CorpusRow:
    """Clip-level metrics of the shipped model on one corpus's unseen speakers.

    ``clips`` is 0 and the metrics None when the run has no such clips.
    """

    corpus: str
    language: str
    role: str
    speakers: int | None
    clips: int
    accuracy: float | None
    uar: float | None
    macro_f1: float | None
    ece: float | None


@dataclass(frozen=True)
class LanguageRow:
    """Corpora of one language aggregated: clip-weighted accuracy, mean UAR of its corpora."""

    language: str
    corpora: tuple[str, ...]
    roles: tuple[str, ...]
    clips: int
    accuracy: float | None
    uar: float | None


def _row(corpus: str, role: str, m: Any) -> CorpusRow:
    m = m if isinstance(m, dict) else {}
    n = m.get("n")
    return CorpusRow(
        corpus=corpus,
        language=_language(corpus),
        role=role,
        speakers=int(m["speakers"]) if isinstance(m.get("speakers"), numbers.Integral) else None,
        clips=int(n) if isinstance(n, numbers.Integral) else 0,
        accuracy=_num(m.get("accuracy")),
        uar=_num(m.get("uar")),
        macro_f1=_num(m.get("macro_f1")),
        ece=_num(m.get("ece")),
    )


def corpus_rows(*, results: dict[str, Any]) -> list[CorpusRow]:
    """One row per corpus: test speakers of every training corpus, then the held-out corpora.

    A training corpus of the run without test clips gets a row with ``clips`` 0.

    Returns
    -------
    list of CorpusRow
    """
    shipped = _shipped(results)
    held = _held_out(results)
    held_all = {c for v in held.values() for c in v}
    trained = _get(results, "provenance", "corpora")
    if not isinstance(trained, list):
        trained = list(results.get("corpora") or {})
    trained = [c for c in _order([*trained, *_corpora_of(shipped.get("test"))]) if c not in held_all]
    rows = [_row(c, ROLE["test"], _get(shipped, "test", c)) for c in trained]
    for part in ("unseen_val", "unseen_test"):
        rows += [_row(c, ROLE[part], _get(shipped, part, c)) for c in _order(held[part])]
    return rows


def language_rows(*, rows: Sequence[CorpusRow]) -> list[LanguageRow]:
    """Aggregate per-corpus rows by language ("English (US)" and "English (British)" are English).

    Accuracy is weighted by clips (= accuracy of the language's clips pooled);
    UAR is the plain mean of its corpora's UARs. Rows without clips are left out
    of both (and of ``corpora``).

    Parameters
    ----------
    rows : sequence of CorpusRow

    Returns
    -------
    list of LanguageRow
        In order of first appearance.
    """
    groups: dict[str, list[CorpusRow]] = {}
    for r in rows:
        groups.setdefault(_base_language(r.language), []).append(r)
    out = []
    for lang, rs in groups.items():
        done = [r for r in rs if r.clips > 0]
        weighted = [r for r in done if r.accuracy is not None]
        n_w = sum(r.clips for r in weighted)
        acc = sum(r.accuracy * r.clips for r in weighted if r.accuracy is not None) / n_w if n_w else None
        out.append(
            LanguageRow(
                language=lang,
                corpora=tuple(r.corpus for r in done),
                roles=tuple(dict.fromkeys(r.role for r in rs)),
                clips=sum(r.clips for r in done),
                accuracy=acc,
                uar=_mean(r.uar for r in done),
            )
        )
    return out


# Sections of results.md ----------------------------------------------------------------------
def _intro(results: dict[str, Any], quick: bool) -> list[str]:
    prov = results.get("provenance") or {}
    shipped = _shipped(results)
    held = _held_out(results)
    lines = ["# Results: speech emotion recognition on voices never heard in training", ""]
    if quick:
        lines += ["> **SMOKE RUN (`--quick`)**: a few clips and one epoch; these numbers mean nothing.", ""]
    graph = shipped.get("evaluated_graph") or "the shipped ONNX graph through ser_engine.inference.model.EmotionModel"
    lines += [
        "Every figure below is measured on speech never used to train the model or to choose anything about it: "
        "the **test speakers** of the training corpora (other people than their training and validation speakers) "
        "and **whole held-out corpora** in languages the model never heard (unseen-corpus test: "
        f"{', '.join(held['unseen_test']) or 'none'}). Figures marked *validation* (validation speakers; "
        f"unseen-corpus validation: {', '.join(held['unseen_val']) or 'none'}) chose the recipe, the epoch, the "
        "temperature, the voice reference and the uncertainty threshold, so they are optimistic. A clip's "
        "prediction is the mean of the probabilities of its speech windows (3 s every 0.5 s), exactly as "
        f"`ser analyze` reports it; clips are scored by {graph}, i.e. the model users run. UAR = mean recall over "
        "the classes present in the set; ECE = expected calibration error of the clip probabilities (15 bins).",
        "",
        f"Produced by `{prov.get('command', '?')}` on {prov.get('date', '?')} (git "
        f"{str(prov.get('git_commit', '?'))[:12]}), {_get(results, 'timings_min', 'total') or '?'} min in total on "
        "this 2-core machine. `ser-train report` re-renders this page from the run's `results.json` "
        "(copied to `docs/results.json`).",
        "",
    ]
    return lines


def _targets_section(results: dict[str, Any]) -> list[str]:
    checks = check_targets(results=results)
    lines = ["## Targets", ""]
    lines += _table(
        ["target", "goal", "measured", "verdict"], [(c.name, c.goal, c.measured, c.verdict) for c in checks]
    )
    missed = [c for c in checks if c.met is False]
    lines += [
        "",
        f"{len(missed)} of {len(checks)} targets not met"
        + (f"; {sum(c.met is None for c in checks)} not evaluated in this run." if any(c.met is None for c in checks)
           else "."),
        "",
    ]
    return lines


def _voices_section(results: dict[str, Any]) -> list[str]:
    shipped = _shipped(results)
    held = _held_out(results)
    lines = [
        "## Voices it never heard",
        "",
        "Whole corpora in languages the model was not trained on, recorded in other rooms with other "
        "microphones, zero-shot (no adaptation; temperature from validation).",
        "",
    ]
    header = ["corpus", "language", "role", "speakers", "clips", "classes present", "accuracy", "UAR", "macro-F1",
              "ECE"]
    rows: list[tuple[Any, ...]] = []
    for part in ("unseen_val", "unseen_test"):
        for c in _order(held[part]):
            m = _get(shipped, part, c)
            role = ROLE[part]
            if not isinstance(m, dict):
                rows.append((c, _language(c), role, "–", 0, NOT_EVALUATED, "–", "–", "–", "–"))
                continue
            rows.append(
                (
                    c,
                    _language(c),
                    role,
                    m.get("speakers", "–"),
                    m.get("n", "–"),
                    ", ".join(m.get("labels_present") or []) or "–",
                    _pct(m.get("accuracy")),
                    _pct(m.get("uar")),
                    _pct(m.get("macro_f1")),
                    _pct(m.get("ece")),
                )
            )
    ut = shipped.get("unseen_test")
    ut_corpora = _corpora_of(ut)
    if ut_corpora:
        rows.append(
            (
                f"**mean over the {len(ut_corpora)} unseen-test corpora**",
                "",
                "",
                "",
                sum(int(_get(ut, c, "n") or 0) for c in ut_corpora),
                "",
                _pct(_mean(_get(ut, c, "accuracy") for c in ut_corpora)),
                f"**{_pct(_corpus_mean_uar(ut))}**",
                _pct(_mean(_get(ut, c, "macro_f1") for c in ut_corpora)),
                _pct(_mean(_get(ut, c, "ece") for c in ut_corpora)),
            )
        )
        a = _get(ut, "all") or {}
        rows.append(
            ("unseen-corpus test, clips pooled", "", "", a.get("speakers", "–"), a.get("n", "–"),
             ", ".join(a.get("labels_present") or []), _pct(a.get("accuracy")), _pct(a.get("uar")),
             _pct(a.get("macro_f1")), _pct(a.get("ece")))
        )
    else:
        rows.append(("unseen-corpus test", "", "", "", 0, NOT_EVALUATED, "–", "–", "–", "–"))
    lines += _table(header, rows)
    lines += [
        "",
        "Figures in %. The targets use the mean over corpora, so a small corpus counts as much as a large one.",
        "",
    ]
    lines += _calibration_section(results)
    return lines


def _calibration_section(results: dict[str, Any]) -> list[str]:
    vc = results.get("voice_calibration") or {}
    ev = vc.get("eval") or {}
    lines = [
        "### Calibrated to the speaker's voice (k neutral clips)",
        "",
        "How it works: a speaker records k neutral clips; the voice profile is the mean logits of those clips' "
        "speech windows minus the reference logits (the same mean for the neutral speech of the "
        f"{vc.get('reference_speakers', '?')} validation speakers of the training corpora, stored in `model.json`). "
        "The profile is subtracted from the logits of every later window of that speaker before the softmax, "
        "so a voice that always sounds a little sad to the model is moved back to where a neutral voice sits. "
        "It is computed by `ser_engine.inference.profile.shift_from_logits`, "
        "the function `ser calibrate` and the app use. "
        "Below, for every speaker with more than k neutral clips with speech, k of them are drawn (seeded) to make "
        "the profile and all the speaker's other clips are scored without (zero-shot) and with it: both columns "
        "are on the same clips, which is why the zero-shot figures differ slightly from the table above. Speakers "
        "with k or fewer neutral clips are skipped. The k clips come from the same session and microphone as the "
        "clips scored.",
        "",
    ]
    if not ev:
        return [*lines, "Voice calibration: not evaluated in this run.", ""]
    header = ["set", "corpus"]
    ks = ("k2", "k4")
    for k in ks:
        n = k[1:]
        header += [f"speakers (k={n})", f"clips (k={n})", f"zero-shot UAR (k={n})", f"calibrated UAR (k={n})",
                   f"change (k={n})"]
    rows: list[list[Any]] = []
    for part in ("test", "unseen_val", "unseen_test"):
        pe = ev.get(part)
        name = PART_NAME[part]
        if not isinstance(pe, dict):
            rows.append([name, NOT_EVALUATED] + ["–"] * 5 * len(ks))
            continue
        corpora = _order(c for k in ks for c in _corpora_of(_get(pe, k, "zero_shot")))
        if part != "test":
            corpora = _order([*corpora, *_held_out(results)[part]])
        for c in [*corpora, "all"]:
            row: list[Any] = [name, c if c != "all" else "**all**"]
            for k in ks:
                z, cal = _get(pe, k, "zero_shot", c), _get(pe, k, "calibrated", c)
                spk: Any
                if c == "all":
                    spk = f"{_get(pe, k, 'speakers') or 0} used / {_get(pe, k, 'speakers_skipped') or 0} skipped"
                else:
                    spk = _get(z, "speakers") or 0
                row += [spk, _get(z, "n") or 0, _pct(_get(z, "uar")), _pct(_get(cal, "uar")),
                        _delta(_get(z, "uar"), _get(cal, "uar"))]
            rows.append(row)
        if part == "unseen_test":
            row = ["**mean over unseen-test corpora**", ""]
            for k in ks:
                z, cal = _corpus_mean_uar(_get(pe, k, "zero_shot")), _corpus_mean_uar(_get(pe, k, "calibrated"))
                row += ["", "", _pct(z), f"**{_pct(cal)}**", _delta(z, cal)]
            rows.append(row)
    lines += _table(header, rows)
    lines += ["", "UAR in %, change in percentage points. \"–\": no speaker of that set had enough neutral clips.", ""]
    return lines


def _per_corpus_section(results: dict[str, Any]) -> list[str]:
    rows = corpus_rows(results=results)
    lines = [
        "## Per corpus and per language",
        "",
        "Training corpora on their test speakers, held-out corpora whole; zero-shot, after temperature.",
        "",
    ]
    lines += _table(
        ["corpus", "language", "role", "speakers", "clips", "UAR", "accuracy", "macro-F1", "ECE"],
        [
            (r.corpus, r.language, r.role, "–" if r.speakers is None else r.speakers, r.clips or "0 (no clips)",
             _pct(r.uar), _pct(r.accuracy), _pct(r.macro_f1), _pct(r.ece))
            for r in rows
        ],
    )
    test_all = _get(_shipped(results), "test", "all")
    if isinstance(test_all, dict):
        lines += [
            "",
            f"All test speakers pooled: {test_all.get('n', '?')} clips, accuracy {_pct_u(test_all.get('accuracy'))}, "
            f"UAR {_pct_u(test_all.get('uar'))}, macro-F1 {_pct_u(test_all.get('macro_f1'))}, "
            f"ECE {_pct_u(test_all.get('ece'))}.",
        ]
    lines += ["", "### Per language", ""]
    lines += _table(
        ["language", "corpora", "in training", "clips", "accuracy (clip-weighted)", "mean UAR of its corpora"],
        [
            (
                lr.language,
                ", ".join(lr.corpora) or NOT_EVALUATED,
                "yes (test speakers)" if ROLE["test"] in lr.roles else "no (held out)",
                lr.clips,
                _pct(lr.accuracy),
                _pct(lr.uar),
            )
            for lr in language_rows(rows=rows)
        ],
    )
    lines += ["", "Figures in %.", ""]
    return lines


def _uncertainty_section(results: dict[str, Any]) -> list[str]:
    u = results.get("uncertainty") or {}
    cal = results.get("calibration") or {}
    lines = ["## Honest uncertainty", ""]
    t = _num(cal.get("temperature"))
    if t is not None:
        lines += [
            f"Probabilities are `softmax(logits / T)` with T = {t:.3f}, fitted (clip-level NLL) on "
            f"{cal.get('fitted_on', 'validation')}; ECE on that selection set "
            f"{_pct_u(cal.get('val_ece_before'))} before, {_pct_u(cal.get('val_ece_after'))} after.",
            "",
        ]
        rows: list[tuple[Any, ...]] = []
        for p in ("val", "test", "unseen_val", "unseen_test"):
            after = _get(cal, "ece_after", p)
            if after is None and _get(cal, "ece_before", p) is None:
                continue
            per = ", ".join(f"{c} {_pct(after[c])}" for c in _corpora_of_values(after))
            rows.append((PART_NAME[p] + (" *(validation)*" if p in ("val", "unseen_val") else ""),
                         _pct(_get(cal, "ece_before", p)), _pct(_get(after, "all")), per or "–"))
        lines += _table(["set", "ECE before T", "ECE after T", "after T, per corpus"], rows)
        lines += ["", "ECE in %.", ""]
    thr = _num(u.get("threshold"))
    if thr is None:
        return [*lines, "Uncertainty threshold: not evaluated in this run.", ""]
    lines += [
        f"A clip (or live window) whose top probability is below **{thr:.2f}** is shown as *uncertain* "
        f"(`uncertainty_threshold` in `model.json`). Rule, applied to the validation clips: {u.get('rule', '?')}.",
        "",
    ]
    sel = u.get("selective") or {}
    rows = []
    held = _held_out(results)
    wanted: list[tuple[str, str, str]] = [("test", "all", "test speakers, all")]
    for part in ("unseen_val", "unseen_test"):
        wanted += [(part, c, f"{c}, {PART_NAME[part]}") for c in _order(held[part])]
    wanted.append(("unseen_test", "all", "unseen-corpus test, clips pooled"))
    for part, key, label in wanted:
        s = _get(sel, part, key)
        if not isinstance(s, dict):
            rows.append((label, 0, NOT_EVALUATED, "–", "–", "–"))
            continue
        rows.append((label, s.get("n", "–"), _pct(s.get("coverage")), _pct(s.get("accuracy_answered")),
                     _pct(s.get("accuracy_uncertain")), _pct(s.get("accuracy_all"))))
    lines += _table(["clips of", "clips", "answered (coverage)", "accuracy of answered", "accuracy of uncertain",
                     "accuracy of all"], rows)
    table = u.get("validation_table") or []
    idx = next((i for i, r in enumerate(table) if _num(r.get("threshold")) == thr), None)
    if idx is not None:
        lines += ["", "Validation clips (the selection set) around the chosen threshold:", ""]
        lines += _table(
            ["threshold", "answered", "accuracy of answered", "accuracy of uncertain"],
            [
                (f"**{r['threshold']:.2f}**" if i == idx else f"{r['threshold']:.2f}", _pct(r.get("coverage")),
                 _pct(r.get("accuracy_answered")), _pct(r.get("accuracy_uncertain")))
                for i, r in enumerate(table)
                if abs(i - idx) <= 3
            ],
        )
    lines += ["", "Figures in %; \"–\" where no clip is answered (or none is uncertain).", ""]
    return lines


def _corpora_of_values(d: Any) -> list[str]:
    return _order(k for k in d if k != "all") if isinstance(d, dict) else []


def _baselines_section(results: dict[str, Any]) -> list[str]:
    held = _held_out(results)
    ut = _order(held["unseen_test"])
    lines = [
        "## Baselines on the same splits",
        "",
        "Same clips, same speakers, same held-out corpora. Validation score = mean of the UAR on the validation "
        "speakers and on the unseen-corpus validation (the selection score). The scikit-learn baselines read "
        "clip-pooled log-mel mean+std (128 features) of clean training clips; the CNN reads 3 s windows of clean and "
        "augmented training audio. The CNN's validation score is the Keras model's at its best epoch; its other "
        "figures come from the shipped ONNX graph.",
        "",
    ]
    header = ["model", "validation score", "test speakers UAR", "unseen-val UAR",
              *[f"{c} UAR" for c in ut], "mean unseen-test UAR"]
    rows = []
    models = results.get("models") or {}
    order = [m for m in models if m != "cnn2d"] + (["cnn2d"] if "cnn2d" in models else [])
    for name in order:
        m = models[name]
        score = _get(m, "val", "score")
        if score is None:
            score = _get(m, "history", "best_val_uar")
        label = "**cnn2d (shipped)**" if name == "cnn2d" else name
        rows.append(
            (label, _pct(score), _pct(_get(m, "test", "all", "uar")), _pct(_get(m, "unseen_val", "all", "uar")),
             *[_pct(_get(m, "unseen_test", c, "uar")) for c in ut], _pct(_corpus_mean_uar(m.get("unseen_test"))))
        )
    lines += _table(header, rows)
    lines += ["", "UAR in %.", ""]
    return lines


def _recipe_section(results: dict[str, Any]) -> list[str]:
    s = results.get("search") or {}
    lines = [
        "## Recipe chosen and what was tried (validation figures only)",
        "",
        f"Selection: {results.get('selection', 'validation UAR')}. Test speakers and the unseen-corpus test were "
        "read only after the model was final.",
        "",
    ]
    trials = s.get("trials") or []
    if trials:
        lines += [
            f"Search space `{json.dumps(s.get('space', {}))}`; budget: {s.get('budget', '?')}. The best trial's "
            "configuration is then trained with the full budget.",
            "",
        ]
        rows = []
        for t in trials:
            best = t.get("trial") == s.get("best_trial")
            rows.append(
                (
                    f"{t.get('trial')}{' (best)' if best else ''}",
                    _pct(t.get("val_score")),
                    _pct(_get(t, "group_uar", 0)),
                    _pct(_get(t, "group_uar", 1)),
                    t.get("balance", "not recorded"),
                    json.dumps(t.get("arch_params", {})),
                    t.get("learning_rate", "–"),
                    t.get("label_smoothing", "–"),
                    t.get("time_mask_max", "–"),
                    t.get("freq_mask_max", "–"),
                    t.get("mixup_alpha", "–"),
                    t.get("freq_warp", "–"),
                    t.get("ema_decay", "–"),
                )
            )
        lines += _table(
            ["trial", "val score", "validation speakers UAR", "unseen-corpus val UAR", "balance", "architecture",
             "lr", "label smoothing", "time mask", "freq mask", "mixup", "freq warp", "EMA"],
            rows,
        )
        lines.append("")
    else:
        lines += ["Search: not run.", ""]
    cnn = _shipped(results)
    hist = cnn.get("history") or {}
    if hist:
        best = hist.get("best_epoch")
        groups = _get(hist, "val_group_uar", best - 1) if isinstance(best, int) and best > 0 else None
        cfg = cnn.get("train_config") or {}
        lines += [
            f"Final model — {cnn.get('kind', '2D CNN')}: {len(hist.get('val_uar') or [])} epoch(s) run, best epoch "
            f"{best}, validation score {_pct_u(hist.get('best_val_uar'))}"
            + (f" (validation speakers {_pct_u(_get(groups, 0))}, unseen-corpus validation {_pct_u(_get(groups, 1))})"
               if groups else "")
            + f"; {cnn.get('params', '?'):,} parameters; balance `{cfg.get('balance', '?')}`; configuration "
            f"`{json.dumps(cfg)}`."
            if isinstance(cnn.get("params"), int)
            else f"Final model: best epoch {best}, validation score {_pct_u(hist.get('best_val_uar'))}.",
            "",
        ]
    if results.get("exploration"):
        e = results["exploration"]
        lines += ["### Earlier recipe exploration (validation speakers only)", "", e.get("description", ""), ""]
        lines += _table(
            ["recipe", "val UAR all", "RAVDESS", "CREMA-D", "SAVEE", "minutes"],
            [
                (r.get("recipe"), _pct(r.get("val_uar")), _pct(r.get("ravdess")), _pct(r.get("crema_d")),
                 _pct(r.get("savee")), r.get("minutes", "–"))
                for r in e.get("runs", [])
            ],
        )
        lines.append("")
    seeds = [m for m in ("cnn1d", "cnn_bilstm") if m in (results.get("models") or {})]
    if seeds:
        lines += [f"Seed models in this run: {', '.join(seeds)} (see the baselines table).", ""]
    else:
        lines += [
            "The seed models (1D CNN, CNN+BiLSTM) are not retrained in this run; "
            "`ser-train seeds` reproduces them properly.",
            "",
        ]
    return lines


def _per_class(metrics: Any) -> list[str]:
    pc = _get(metrics, "per_class")
    if not isinstance(pc, dict):
        return [NOT_EVALUATED]
    return _table(
        ["class", "precision", "recall", "F1", "support"],
        [(lab, _pct(v.get("precision")), _pct(v.get("recall")), _pct(v.get("f1")), v.get("support", "–"))
         for lab, v in pc.items()],
    )


def _ravdess8_section(results: dict[str, Any]) -> list[str]:
    r8 = _get(results, "ravdess8", "test", "all")
    lines = ["## RAVDESS, 8 classes (keeps calm)", ""]
    if not isinstance(r8, dict):
        return [*lines, "Not evaluated in this run.", ""]
    spk = _get(results, "split", "speakers", "ravdess") or {}
    test_actors = [str(s).split(":")[-1] for s in spk.get("test", [])]
    lines += [
        "Same features, split and augmentation; the network starts from the 7-class trunk (trained on training "
        f"speakers only) with a new 8-way head, fine-tuned on the {len(spk.get('train', []))} RAVDESS training "
        f"actors, selected on the {len(spk.get('val', []))} validation actors, tested once on actors "
        f"{', '.join(test_actors) or '?'}. Scored with Keras (this head is not shipped).",
        "",
        f"Test accuracy {_pct_u(r8.get('accuracy'))}, **UAR {_pct_u(r8.get('uar'))}**, macro-F1 "
        f"{_pct_u(r8.get('macro_f1'))} ({r8.get('n', '?')} clips; validation UAR "
        f"{_pct_u(_get(results, 'ravdess8', 'val_uar'))}). Published speaker-independent anchors: 62.3 % UAR "
        "(5-fold ResLSTM), 68.3 % (wav2vec2-base, 3 held-out actors). "
        f"{len(test_actors) or 'A few'} test actors make this figure noisy (± several points).",
        "",
    ]
    return [*lines, *_per_class(r8), ""]


def _export_section(results: dict[str, Any]) -> list[str]:
    ex = results.get("export") or {}
    q = results.get("int8") or {}
    lines = ["## Export, int8 quantisation, speed", ""]
    if not ex:
        return [*lines, NOT_EVALUATED, ""]
    parity = _num(ex.get("parity_max_abs_prob_diff"))
    size = _num(ex.get("size_bytes"))
    lat = _num(ex.get("latency_ms_1thread"))
    lines.append(
        "tf2onnx (opset 17, input `features` (batch, time, 64) with a dynamic time axis); ONNX/Keras parity max abs "
        f"probability difference {'–' if parity is None else f'{parity:.1e}'} (limit 1e-4). Shipped graph "
        f"{'–' if size is None else f'{size / 1e6:.2f}'} MB, {'–' if lat is None else f'{lat:.2f}'} ms per 3 s window "
        "(ONNX Runtime, 1 thread, median)."
    )
    if q.get("ok"):
        lines += [""]
        lines += _table(
            ["graph", "validation UAR", "validation accuracy", "ms / window (1 thread)", "size"],
            [
                (name, _pct(_get(q, tag, "val_uar")), _pct(_get(q, tag, "val_accuracy")), _get(q, tag, "latency_ms"),
                 f"{(_num(_get(q, tag, 'size_bytes')) or 0) / 1e6:.2f} MB")
                for tag, name in (("fp32", "float32"), ("int8", "int8 (static QDQ, per-channel)"))
            ],
        )
        lines += [
            "",
            f"int8 shipped: {'yes' if q.get('ship_int8') else 'no'} (rule: faster here and under one UAR point lost "
            f"on validation; cost {q.get('uar_cost_points')} points, faster: {q.get('faster')}). The parity check is "
            "made on the float32 export; every test figure above is measured on the shipped graph itself.",
        ]
    else:
        lines.append(f"int8 quantisation failed: {q.get('error', 'not attempted')}")
    return [*lines, ""]


def _data_section(results: dict[str, Any]) -> list[str]:
    sp = results.get("split") or {}
    prov = results.get("provenance") or {}
    corpora = results.get("corpora") or {}
    lines = ["## Data and protocol", ""]
    clips = sp.get("clips") or {}
    nos = sp.get("no_speech_clips") or {}
    win = sp.get("windows") or {}
    parts = ("train", "val", "test", "unseen_val", "unseen_test")
    lines += [
        f"* Split `{sp.get('file', '?')}` (sha256 `{str(sp.get('sha256', '?'))[:12]}…`): speaker-disjoint "
        "train / validation / test inside each training corpus; whole corpora held out "
        f"({'; '.join(f'{PART_NAME[p]}: ' + ', '.join(v) for p, v in _held_out(results).items())}).",
        "* Clips with speech per part: " + ", ".join(f"{PART_NAME.get(p, p)} {clips.get(p, 0)}" for p in parts)
        + "; speech windows: " + ", ".join(f"{p} {win.get(p, 0)}" for p in parts)
        + f"; augmented training windows {sp.get('train_augmented_windows', 0)}.",
        "* Clips dropped because the speech gate found no speech window in them (`ser analyze` reports them as "
        "\"no speech\"): " + ", ".join(f"{p} {nos.get(p, 0)}" for p in parts) + ".",
        "",
    ]
    spk = sp.get("speakers") or {}
    rows = []
    listed = [r.corpus for r in corpus_rows(results=results)]
    for c in [*listed, *_order((set(spk) | set(corpora)) - set(listed))]:
        s = spk.get(c) or {}
        cp = _get(corpora, c, "parts") or {}
        cells = [f"{len(s.get(p, []))} / {cp.get(p, 0)}" if s.get(p) or cp.get(p) else "–" for p in parts]
        rows.append((c, _language(c), *cells))
    if rows:
        lines += _table(["corpus", "language", *[f"{PART_NAME.get(p, p)} (speakers / clips)" for p in parts]
                         ], rows)
        lines += [
            "",
            "Speakers as listed in the split file; clips as used by this run.",
            "",
        ]
    lines += [
        "* Labels harmonised to 7 classes (calm → neutral for RAVDESS and TurEV-DB, IndoWave's *disappointed* "
        "dropped; see [docs/corpora.md](corpora.md) for every corpus's mapping). UAR = mean recall over the classes "
        "present in a set.",
        "* Windows exactly as the app presents them, from the one window-inference core that `ser analyze` and "
        "the live view use (`ser_engine.dsp.core.iter_window_features`): 3 s every 0.5 s on the 20 ms frame grid, the "
        "final window ending up to 20 ms before the end of the clip, short clips centre-padded with zeros; "
        "64 log-mel bands by `ser_engine.dsp.features.Featurizer`; only windows "
        f"accepted by `{prov.get('silence_policy', 'the speech gate')}` are used.",
        f"* Normalisation: {prov.get('normalisation', 'per-band mean/std of the training windows')}, stored in "
        "`model.json`.",
        f"* Augmentation on training audio only, after the split, {prov.get('n_augmented_copies', '?')} precomputed "
        f"cop{'y' if prov.get('n_augmented_copies') == 1 else 'ies'} per clip: {prov.get('augmentation', '?')}. "
        "SpecAugment-style time/frequency masks on batches.",
        "",
    ]
    return lines


def _figures(results: dict[str, Any], fig_dir: Path) -> list[tuple[str, str]]:
    """Write the confusion matrices; remove ``confusion_*.png`` files of earlier reports no longer produced."""
    labels = results.get("labels") or []
    shipped = _shipped(results)
    held = _held_out(results)
    todo: list[tuple[str, str, Any, Sequence[str], str]] = []
    t_all = _get(shipped, "test", "all")
    todo.append(("shipped model, test speakers, all", "confusion_cnn2d_all.png", t_all, labels,
                 f"shipped model, test speakers (UAR {_pct(_get(t_all, 'uar'))} %)"))
    for part in ("unseen_val", "unseen_test"):
        for c in _order(held[part]):
            m = _get(shipped, part, c)
            todo.append((f"shipped model, {c} ({ROLE[part]})", f"confusion_cnn2d_{c}.png", m, labels,
                         f"shipped model, {c}, {ROLE[part]} (UAR {_pct(_get(m, 'uar'))} %)"))
    r8 = _get(results, "ravdess8", "test", "all")
    todo.append(("RAVDESS 8 classes", "confusion_ravdess8.png", r8, _get(r8, "labels") or [],
                 f"RAVDESS 8 classes, test actors (UAR {_pct(_get(r8, 'uar'))} %)"))
    svm = _get(results, "models", "svm", "test", "all")
    todo.append(("SVM baseline, test speakers", "confusion_svm_all.png", svm, labels,
                 f"SVM baseline, test speakers (UAR {_pct(_get(svm, 'uar'))} %)"))
    done: list[tuple[str, str]] = []
    for caption, name, m, labs, title in todo:
        conf = _get(m, "confusion")
        if not conf or not labs:
            continue
        plot_confusion(confusion=conf, labels=labs, title=title, path=fig_dir / name)
        done.append((caption, name))
    produced = {n for _, n in done}
    if fig_dir.is_dir():
        for old in fig_dir.glob("confusion_*.png"):
            if old.name not in produced:
                old.unlink()
    return done


def _limits(results: dict[str, Any]) -> list[str]:
    rows = corpus_rows(results=results)
    trained = list(dict.fromkeys(_base_language(r.language) for r in rows if r.role == ROLE["test"]))
    held = [r for r in rows if r.role != ROLE["test"]]
    held_langs = list(dict.fromkeys(_base_language(r.language) for r in held))
    spk = [r.speakers for r in held if r.speakers]
    spk_text = f"{min(spk)} to {max(spk)} speakers each" if spk else "speaker counts not recorded"
    return [
        "## Limits",
        "",
        "* Acted speech: actors reading fixed sentences with exaggerated emotions. Spontaneous, conversational "
        "speech is subtler and will be recognised less accurately.",
        f"* Languages: trained on {', '.join(trained) or '?'}; evaluated zero-shot on {len(held_langs)} held-out "
        f"language(s) only ({', '.join(held_langs) or 'none'}). Other languages, accents, children, clinical "
        "populations, far-field or noisy microphones are not measured.",
        f"* The held-out corpora are small ({spk_text} with clips, one corpus per language), so their "
        "figures move by several points with a different corpus; so do the per-corpus test figures of corpora with "
        "one or two test speakers.",
        "* Per-speaker calibration was evaluated with k neutral clips recorded in the same session and with the "
        "same microphone as the clips scored; a user calibrating in one room and speaking in another will gain less.",
        "* Label sets differ between corpora (CREMA-D and ASED have no surprised, several have no disgust); UAR is "
        "over the classes present, so per-corpus UARs are not over the same classes.",
        "",
    ]


def _adaptation_section(results: dict[str, Any]) -> list[str]:
    """Unsupervised adaptation to each voice: measured as a direction, not a feature yet."""
    va = results.get("voice_adaptation")
    if not va:
        return []
    shipped = _shipped(results)
    rows = []
    for part, title in (("test", "test speakers"), ("unseen_val", "unseen-corpus validation"),
                        ("unseen_test", "unseen-corpus test")):
        adapted = _get(va, "eval", part) or {}
        for corpus, m in adapted.items():
            zero = _get(shipped, part, corpus, "uar")
            rows.append((title, corpus, _pct(zero), _pct(m.get("uar")),
                         "–" if zero is None or m.get("uar") is None else f"{100 * (m['uar'] - zero):+.1f}"))
    unseen = [c for c in (_get(va, "eval", "unseen_test") or {}) if c != "all"]
    if unseen:
        z = [_get(shipped, "unseen_test", c, "uar") for c in unseen]
        a = [_get(va, "eval", "unseen_test", c, "uar") for c in unseen]
        if all(v is not None for v in z + a):
            mz, ma = sum(z) / len(z), sum(a) / len(a)
            rows.append(
                ("**mean over unseen-test corpora**", "", _pct(mz), f"**{_pct(ma)}**", f"{100 * (ma - mz):+.1f}")
            )
    search = ", ".join(
        f"{r['strength']}: {'/'.join(_pct(u) for u in r['group_uar'])}" for r in va.get("strength_search", [])
    )
    return [
        "### Adapting to a voice without any neutral recording (measured, not yet in the program)",
        "",
        f"Method: {va.get('method', '')}. Strength {va.get('strength')} chosen on validation "
        f"(strength: validation speakers / unseen-corpus validation UAR — {search}). This is the direction the "
        "notes on generalisation point to (statistics of everything a speaker said); for `ser analyze` over a "
        "folder known to hold one speaker, or a live session that keeps adapting, it would need a guard for "
        "speakers who are mostly calm.",
        "",
        *_table(["set", "corpus", "zero-shot UAR", "adapted UAR", "change"], rows),
        "",
    ]


def write_results(*, results: dict[str, Any], docs_dir: Path, quick: bool = False) -> None:
    """Write ``results.md``, ``results.json`` and the confusion matrices into ``docs_dir``.

    Parameters
    ----------
    results : dict
        The pipeline's results (``<run>/results.json``).
    docs_dir : Path
        Output folder (``docs/``); figures go to ``docs_dir/figures``. Confusion-matrix PNGs of earlier
        reports that this one no longer produces are removed, so the page never points at stale files.
    quick : bool
        Smoke run: adds a banner (also shown when the run's command was ``--quick``).
    """
    quick = _is_quick(results, quick)
    docs_dir.mkdir(parents=True, exist_ok=True)
    fig_dir = docs_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    pngs = _figures(results, fig_dir)
    shipped = _shipped(results)
    lines = _intro(results, quick)
    lines += _targets_section(results)
    lines += _voices_section(results)
    lines += _adaptation_section(results)
    lines += _per_corpus_section(results)
    lines += _uncertainty_section(results)
    lines += _baselines_section(results)
    if isinstance(results.get("seeds"), dict):  # `ser-train seeds` (results_seeds.json beside results.json)
        lines += seed_systems_section(seeds=results["seeds"], results=results)
    lines += _recipe_section(results)
    lines += ["## Per class", "", "### Test speakers, all corpora", "", *_per_class(_get(shipped, "test", "all")), ""]
    lines += ["### Unseen-corpus test, clips pooled", "", *_per_class(_get(shipped, "unseen_test", "all")), ""]
    lines += _ravdess8_section(results)
    lines += _export_section(results)
    lines += ["## Confusion matrices", "", "Rows: true class, normalised; columns: predicted class.", ""]
    lines += [f"![{k}](figures/{n})" for k, n in pngs] or [NOT_EVALUATED]
    lines.append("")
    lines += _data_section(results)
    if results.get("notes"):
        lines += ["## Notes on this run", "", *[f"* {n}" for n in results["notes"]], ""]
    lines += ["## Time per stage (minutes)", ""]
    lines += _table(["stage", "min"], list((results.get("timings_min") or {}).items()))
    lines += [
        "",
        "Feature caching: a second run with the same FeatureConfig, split and augmentation seed reads the cache "
        "(`~/.cache/ser/features`) and skips decoding and featurization.",
        "",
    ]
    lines += _limits(results)
    (docs_dir / "results.md").write_text("\n".join(lines), encoding="utf-8")
    (docs_dir / "results.json").write_text(json.dumps(_finite(results), indent=1) + "\n", encoding="utf-8")


# Seed systems (ser-train seeds) -----------------------------------------------------------
MODEL_NAME = {
    "decision_tree": "decision tree",
    "knn": "k-NN (k = 4)",
    "cnn1d": "1D CNN (seeds 000/003/004)",
    "cnn_bilstm": "CNN+BiLSTM (seed 002)",
}
PROTOCOL_NAME = {
    "random": "random split",
    "augment_before_split": "augment before split",
    "speaker_independent": "speaker-independent",
}


def _seed_si_runs(seeds: dict[str, Any]) -> list[dict[str, Any]]:
    """Speaker-independent runs to report: every one but the search trials that were not chosen."""
    best = _get(seeds, "search", "best_trial")
    out = []
    for r in seeds.get("runs") or []:
        if r.get("protocol") != "speaker_independent":
            continue
        if r.get("stage") == "search" and r.get("trial") != best:
            continue
        out.append(r)
    return out


def _trained_on(run: dict[str, Any]) -> str:
    corpora = run.get("train_corpora") or []
    name = "RAVDESS" if corpora == ["ravdess"] else f"{len(corpora)} corpora"
    copies = run.get("copies") or 0
    return name + (f" + {copies} cop{'y' if copies == 1 else 'ies'}" if copies else "")


def _seed_model_name(run: dict[str, Any], seeds: dict[str, Any]) -> str:
    name = MODEL_NAME.get(run["model"], run["model"])
    if run.get("trial") is None:
        return name if run["model"] != "cnn_bilstm" or run.get("stage") != "all" else f"{name}, search's choice"
    chosen = ", chosen" if run["trial"] == _get(seeds, "search", "best_trial") else ""
    return f"{name}, trial {run['trial']}{chosen}"


def _epochs(run: dict[str, Any]) -> str:
    if not run.get("max_epochs"):
        return "–"
    stop = "limit" if run.get("stopped") == "epoch limit" else "early stop"
    return f"{run.get('epochs_run')}/{run['max_epochs']} ({stop}, best {run.get('best_epoch')})"


def _minutes(seconds: Any) -> str:
    f = _num(seconds)
    return "–" if f is None else (f"{f:.0f} s" if f < 90 else f"{f / 60:.1f} min")


def seed_systems_section(*, seeds: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """Markdown lines of the "Seed systems" section: the seeds' models under our protocol, beside ours.

    Parameters
    ----------
    seeds : dict
        ``results_seeds.json`` as :func:`training.seeds.run.run_seeds` writes it.
    results : dict
        The pipeline's results; the shipped model's figures come from ``models.cnn2d``.

    Returns
    -------
    list of str
    """
    held = _held_out(results)
    ut = _order(held["unseen_test"])
    uv = _order(held["unseen_val"])
    shipped = _shipped(results)
    budget = seeds.get("budget") or {}
    lines = ["## Seed systems", ""]
    if seeds.get("quick"):
        lines += ["> **Smoke run (`--quick`)**: a handful of clips per corpus; the figures below mean nothing.", ""]
    est, took = seeds.get("estimate") or {}, seeds.get("timings_min") or {}
    lines += [
        "The five projects this one started from, reproduced under our protocol by `ser-train seeds` "
        "(`training/seeds/run.py`): their feature sets computed by our one featurizer through the engine's audio "
        "path, their models (decision tree, k-NN with k = 4, the 1D CNN of seeds 000/003/004, seed 002's CNN+BiLSTM "
        "and its random search), early stopping on validation speakers instead of a fixed number of epochs, "
        "7 harmonised classes, UAR over clips. The run is budgeted to one hour on a 2-core machine without AVX2: "
        f"estimated at most {_num(est.get('target_min')) or 0:.0f} min there "
        f"({_num(est.get('total_min')) or 0:.0f} min on the development machine), it took "
        f"{_num(took.get('total')) or 0:.1f} min. What the budget cut: the 1D CNN (92 ms per item and epoch) is "
        f"trained on RAVDESS recordings only with at most {budget.get('max_epochs_cnn1d', '?')} epochs; the "
        f"seeds' augmented copies ({budget.get('copies', '?')} per clip: noise, pitch, stretch, shift) are made "
        "for RAVDESS only; the all-corpora models train on the recordings; the random search tries "
        f"{budget.get('search_trials', '?')} configurations on RAVDESS.",
        "",
        "### Feature sets",
        "",
    ]
    fsets = seeds.get("feature_sets") or {}
    rows: list[tuple[str, ...]] = []
    for name, fs in fsets.items():
        cfg = fs.get("config") or {}
        frames = f"{cfg.get('n_fft')}-point FFT, hop {cfg.get('hop_length')} samples, {cfg.get('n_mels')} mel"
        rows.append((f"`{name}`", str(fs.get("per_frame", "–")), str(fs.get("description", "")), frames))
    lines += _table(["set", "values per frame", "used by", "frames"], rows) if rows else [NOT_EVALUATED]
    lines += ["", "### Under our protocol (speaker-independent), beside our model", ""]
    header = ["model", "features", "trained on", "parameters", "epochs", "train time", "test speakers UAR",
              "RAVDESS test UAR", *[f"{c} UAR" for c in uv], *[f"{c} UAR" for c in ut],
              "mean unseen-test UAR"]  # fmt: skip
    table_rows = []
    si = _seed_si_runs(seeds)
    for r in si:
        u = r.get("uar") or {}
        all_corpora = (r.get("train_corpora") or []) != ["ravdess"]
        params = r.get("parameters")
        table_rows.append((
            _seed_model_name(r, seeds), f"`{r['features']}`", _trained_on(r),
            f"{params:,}" if isinstance(params, int) else "–", _epochs(r), _minutes(r.get("train_s")),
            _pct(_get(u, "test", "all")) if all_corpora else "–", _pct(_get(u, "test", "ravdess")),
            *[_pct(_get(u, "unseen_val", c)) for c in uv], *[_pct(_get(u, "unseen_test", c)) for c in ut],
            _pct(_mean(_get(u, "unseen_test", c) for c in ut)),
        ))  # fmt: skip
    if shipped:
        n_ep = len(_get(shipped, "history", "loss") or [])
        table_rows.append((
            "**ours: 2D CNN (shipped)**", "log-mel", "8 corpora + 2 copies",
            f"{shipped['params']:,}" if isinstance(shipped.get("params"), int) else "–", str(n_ep or "–"),
            _minutes(60 * (_num(_get(results, "timings_min", "final_model")) or math.nan)),
            _pct(_get(shipped, "test", "all", "uar")), _pct(_get(shipped, "test", "ravdess", "uar")),
            *[_pct(_get(shipped, "unseen_val", c, "uar")) for c in uv],
            *[_pct(_get(shipped, "unseen_test", c, "uar")) for c in ut],
            _pct(_mean(_get(shipped, "unseen_test", c, "uar") for c in ut)),
        ))  # fmt: skip
    lines += _table(header, table_rows) if table_rows else [NOT_EVALUATED]
    lines += [
        "",
        f"UAR in %. Unseen corpora: {', '.join(uv)} is the unseen-corpus validation (used for selection: the "
        f"search's choice), {', '.join(ut)} the unseen-corpus test. Models trained on RAVDESS are scored on RAVDESS's "
        "test speakers and the unseen corpora; epochs = run / limit, the best epoch's weights kept.",
        "",
    ]
    corpora = _order({c for r in si if (r.get("train_corpora") or []) != ["ravdess"] for c in _corpora_of_values(
        _get(r, "uar", "test"))})  # fmt: skip
    if corpora:
        lines += ["### Test speakers per corpus (models trained on all corpora)", ""]
        rows = [(_seed_model_name(r, seeds), f"`{r['features']}`", *[_pct(_get(r, "uar", "test", c)) for c in corpora])
                for r in si if (r.get("train_corpora") or []) != ["ravdess"]]  # fmt: skip
        if shipped:
            rows.append(("**ours (shipped)**", "log-mel", *[_pct(_get(shipped, "test", c, "uar")) for c in corpora]))
        lines += [*_table(["model", "features", *corpora], rows), "", "UAR in %.", ""]
    lines += _leak_lines(seeds)
    lines += _search_lines(seeds)
    lines += _not_ahead_lines(si, shipped, uv, ut)
    return lines


def _leak_lines(seeds: dict[str, Any]) -> list[str]:
    lines = ["### The seeds' claims, tested: RAVDESS under three split protocols", ""]
    leak = seeds.get("leak_table") or []
    if not leak:
        return [*lines, NOT_EVALUATED, ""]
    lines += [
        "The same model and features, trained and scored three ways on RAVDESS: the seeds' random split (every "
        "actor on both sides), seed 003's augmentation before the split (copies of one recording on both sides; "
        "scored on the test items as the seed did, and on the test recordings alone) and our speaker-independent "
        "split (no actor on two sides). The last two columns: points of test UAR each shortcut adds.",
        "",
    ]
    rows = [
        (MODEL_NAME.get(r["model"], r["model"]), f"`{r['features']}`", _pct(r.get("random")),
         _pct(r.get("augment_before_split")), _pct(r.get("augment_before_split_recordings")),
         _pct(r.get("speaker_independent")), _delta(r.get("speaker_independent"), r.get("random")),
         _delta(r.get("speaker_independent"), r.get("augment_before_split")))
        for r in leak
    ]  # fmt: skip
    header = ["model", "features", "random split", "augment before split", "… its recordings only",
              "speaker-independent", "points added by the random split",
              "points added by augmenting first"]  # fmt: skip
    return [*lines, *_table(header, rows), "", "Test UAR in %, 7 classes (calm counted as neutral).", ""]


def _search_lines(seeds: dict[str, Any]) -> list[str]:
    trials = _get(seeds, "search", "trials") or []
    if not trials:
        return []
    best = _get(seeds, "search", "best_trial")
    lines = ["### Seed 002's random search (CNN+BiLSTM on RAVDESS)", "",
             f"Chosen on {_get(seeds, 'search', 'score') or 'the validation score'}; trial 0 is the seed's default.",
             ""]  # fmt: skip
    rows = [(f"**{t['trial']}**" if t["trial"] == best else t["trial"], f"`{json.dumps(t.get('config'))}`",
             _pct(t.get("val_uar")), _pct(t.get("unseen_val_uar")), _pct(t.get("score")), t.get("epochs_run", "–"))
            for t in trials]  # fmt: skip
    header = ["trial", "configuration", "validation UAR", "unseen-val UAR", "score", "epochs"]
    return [*lines, *_table(header, rows), ""]


def _not_ahead_lines(
    si: list[dict[str, Any]], shipped: dict[str, Any], uv: list[str], ut: list[str]
) -> list[str]:
    """Where a seed model scores at least as well as ours (same clips)."""
    lines = ["### Where our model is not ahead", ""]
    if not shipped or not si:
        return [*lines, NOT_EVALUATED, ""]
    found = []
    for r in si:
        u = r.get("uar") or {}
        checks = [("RAVDESS test speakers", _get(u, "test", "ravdess"), _get(shipped, "test", "ravdess", "uar"))]
        if (r.get("train_corpora") or []) != ["ravdess"]:
            checks.append(("test speakers, all corpora", _get(u, "test", "all"), _get(shipped, "test", "all", "uar")))
            checks += [(f"{c} test speakers", _get(u, "test", c), _get(shipped, "test", c, "uar"))
                       for c in _corpora_of_values(_get(u, "test")) if c != "ravdess"]  # fmt: skip
        checks += [(f"{c} (unseen)", _get(u, part, c), _get(shipped, part, c, "uar"))
                   for part, names in (("unseen_val", uv), ("unseen_test", ut)) for c in names]  # fmt: skip
        for what, theirs, ours in checks:
            ft, fo = _num(theirs), _num(ours)
            if ft is not None and fo is not None and ft >= fo:
                found.append(f"* {MODEL_NAME.get(r['model'], r['model'])} on `{r['features']}` "
                             f"({_trained_on(r)}), {what}: {_pct(ft)} % against our {_pct(fo)} %")  # fmt: skip
    if not found:
        return [*lines, "Our shipped model is ahead of every seed model on every figure above.", ""]
    return [*lines, *found, ""]


# Model card ------------------------------------------------------------------------------
LICENCES = (
    "RAVDESS CC BY-NC-SA 4.0; CREMA-D Open Database License (ODbL); nEMO CC BY-NC-SA 4.0; TurEV-DB CC BY-NC-ND 4.0; "
    "emotiontts CC BY-NC-SA; TESS, SAVEE, ASED, CASIA, UEM and IndoWave: research use under the terms their "
    "authors published."
)


def write_model_card(*, results: dict[str, Any], path: Path, quick: bool = False) -> None:
    """``models/MODEL_CARD.md``: what it is, intended use, data and licences, metrics, missed targets, limits.

    Parameters
    ----------
    results : dict
        The pipeline's results (``<run>/results.json``).
    path : Path
        The card's file.
    quick : bool
        Smoke run: adds a banner (also shown when the run's command was ``--quick``).
    """
    quick = _is_quick(results, quick)
    shipped = _shipped(results)
    cal = results.get("calibration") or {}
    ex = results.get("export") or {}
    held = _held_out(results)
    held_all = [c for p in ("unseen_val", "unseen_test") for c in _order(held[p])]
    rows = corpus_rows(results=results)
    trained = [r.corpus for r in rows if r.role == ROLE["test"]]
    train_langs = list(dict.fromkeys(_base_language(_language(c)) for c in trained))
    held_langs = [f"{_base_language(_language(c))} ({c})" for c in held_all]
    labels = results.get("labels") or []
    t = _num(cal.get("temperature"))
    size, lat = _num(ex.get("size_bytes")), _num(ex.get("latency_ms_1thread"))
    lines = ["# Model card: ser-cnn2d (default model)", ""]
    if quick:
        lines += ["> **SMOKE RUN**: not a usable model.", ""]
    params = shipped.get("params")
    lines += [
        "## What it is",
        f"A small 2D convolutional network ({f'{params:,}' if isinstance(params, int) else '?'} parameters, "
        f"{'?' if size is None else f'{size / 1e6:.2f}'} MB ONNX"
        f"{', int8' if ex.get('int8_shipped') else ''}) that reads 3 s of 16 kHz mono audio as 64 log-mel bands and "
        f"outputs {len(labels)} emotion classes: {', '.join(labels)}. Probabilities are `softmax(logits / T)` with "
        f"T = {'?' if t is None else f'{t:.3f}'} fitted on validation data; "
        f"{'?' if lat is None else f'{lat:.2f}'} ms per window on one CPU thread. A clip's emotion is the mean over "
        "its speech windows.",
        "",
        "## Intended use",
        "Live monitoring and file analysis of the *expressed* emotional tone of one adult speaker, as a demonstration "
        f"and research aid. Trained on {len(train_langs)} languages ({', '.join(train_langs)}); tested zero-shot on "
        f"held-out {', '.join(held_langs) or 'corpora (none in this run)'} — expect lower accuracy on languages "
        "and recording conditions it has not seen; calibrating to your voice (`ser calibrate`) helps. Not for "
        "decisions about people (hiring, health, policing, security), not a lie or mood detector, not validated on "
        "children, clinical populations or spontaneous speech.",
        "",
        "## Data",
        f"Eleven acted-speech corpora. Trained on {len(trained)} ({', '.join(trained)}) with speaker-disjoint "
        "train / validation / test speakers inside each; held out whole: "
        + "; ".join(f"{PART_NAME[p]} {', '.join(_order(held[p])) or 'none'}" for p in ("unseen_val", "unseen_test"))
        + " (the unseen-corpus validation took part in model selection, the unseen-corpus test only in the report). "
        "Augmentation (speed/pitch/tempo, reverberation, band-limiting, shift, gain, noise) on training audio only. "
        "Split: `training/splits/speakers.json`; details in `docs/corpora.md`.",
        "",
        f"Licences: {LICENCES} **A model trained on them inherits non-commercial terms**: this model is for research "
        "and non-commercial use.",
        "",
        "## Metrics on voices never used for training or selection",
        "",
    ]
    rows_md = []
    for r in rows:
        rows_md.append((r.corpus, r.language, r.role, r.clips, _pct_u(r.uar), _pct_u(r.accuracy), _pct_u(r.ece)))
    lines += _table(["corpus", "language", "set", "clips", "UAR", "accuracy", "ECE"], rows_md)
    ev = _get(results, "voice_calibration", "eval", "unseen_test")
    ut = shipped.get("unseen_test")
    lines += ["", "Whole unseen corpora, zero-shot and calibrated to each speaker's voice (same clips):", ""]
    if isinstance(ut, dict) and _corpora_of(ut):
        crow = []
        for c in [*_corpora_of(ut), "mean"]:
            def cell(k: str, kind: str, c: str = c) -> str:
                d = _get(ev, k, kind)
                return _pct_u(_corpus_mean_uar(d) if c == "mean" else _get(d, c, "uar"))

            zero = _pct_u(_corpus_mean_uar(ut)) if c == "mean" else _pct_u(_get(ut, c, "uar"))
            crow.append((c if c != "mean" else "**mean over corpora**", zero, cell("k2", "zero_shot"),
                         cell("k2", "calibrated"), cell("k4", "calibrated")))
        lines += _table(["corpus", "zero-shot UAR (all clips)", "zero-shot UAR (calibration clips)",
                         "calibrated, 2 neutral clips", "calibrated, 4 neutral clips"], crow)
    else:
        lines.append(f"Unseen-corpus test: {NOT_EVALUATED} in this run.")
    r8 = _num(_get(results, "ravdess8", "test", "all", "uar"))
    lines += [
        "",
        f"RAVDESS 8 classes (separate fine-tuned head, not shipped): UAR {_pct_u(r8)}.",
        "",
        "## Targets missed",
    ]
    checks = check_targets(results=results)
    missed = [c for c in checks if c.met is False]
    lines += [f"* {c.name}: {c.measured} (goal {c.goal})" for c in missed] or ["* none"]
    lines += [f"* {c.name}: not evaluated" for c in checks if c.met is None]
    thr = _num(_get(results, "uncertainty", "threshold"))
    lines += [
        "",
        "Full tables: `docs/results.md`.",
        "",
        "## Uncertainty",
        (
            f"A prediction whose top probability is below {thr:.2f} is flagged *uncertain* (chosen on validation "
            "clips; `uncertainty_threshold` in `model.json`); treat it as \"don't know\"."
            if thr is not None
            else "Uncertainty threshold: not evaluated in this run."
        ),
        "",
        "## Known limits",
        "* Acted emotions are exaggerated and read from a few fixed sentences; real conversational speech is subtler "
        "and will be classified less accurately, with more neutral/sad confusion.",
        "* Accuracy varies strongly from voice to voice and from corpus to corpus; the held-out corpora are small.",
        "* 3 s windows; one speaker at a time; music, laughter and overlapping talk are out of scope.",
        "* Calibration was evaluated with neutral clips from the same session and microphone as the speech scored.",
        *[f"* {n}" for n in results.get("card_limits", [])],
        "",
        "## Provenance",
        f"Trained by `{_get(results, 'provenance', 'command') or '?'}` (git "
        f"{str(_get(results, 'provenance', 'git_commit') or '?')[:12]}, {_get(results, 'provenance', 'date') or '?'}); "
        "libraries, split hash, configuration and date are in `model.json`.",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")

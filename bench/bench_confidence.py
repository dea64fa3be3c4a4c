"""How the "uncertain" threshold trades answered clips against accuracy, for the shipped model.

Every clip of the validation parts (the validation speakers of the training corpora and the
unseen validation corpus) and of the test parts goes through ``ser analyze``'s own path
(:func:`ser_engine.files.analysis.analyze_paths`, the shipped ``models/``, no voice profile).
For each threshold ``t`` on a grid: coverage (share of clips whose top probability is at least
``t``, i.e. answered) and accuracy (share right among the answered). The threshold shipped in
``model.json`` is chosen on the validation clips only, by ``ser-train encoder``'s rule
(:func:`training.crosscorpus.threshold_for_coverage`: the largest threshold answering at least
:data:`training.crosscorpus.TARGET_COVERAGE` of them); the test
curves are reported beside it, never used.

Usage::

    python bench/bench_confidence.py [--workers 2] [--write-model] [--reuse]

Writes ``bench/results/confidence.json`` and, with ``--write-model``, the validation curve and
the chosen threshold into ``models/model.json`` (``--reuse``: from the last run's JSON) (``confidence_tradeoff``,
``uncertainty_threshold``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ser_engine.files.analysis import analyze_paths  # noqa: E402
from ser_engine.inference.model import EmotionModel  # noqa: E402
from training.crosscorpus import TARGET_COVERAGE, threshold_for_coverage, tradeoff_points  # noqa: E402
from training.encoder.run import prepare_clips  # noqa: E402
from training.pipeline import DEFAULT_DATA  # noqa: E402

GROUPS = {
    "validation": ("val", "unseen_val"),
    "validation speakers (training corpora)": ("val",),
    "unseen validation corpus": ("unseen_val",),
    "test speakers (training corpora)": ("test",),
    "unseen test corpora": ("unseen_test",),
}


def write_model(out: dict[str, Any]) -> None:
    """Put the chosen threshold and the validation curve into ``models/model.json`` (its own key order)."""
    import dataclasses

    from ser_engine.inference.model_meta import ConfidenceTradeoff, ModelMetadata

    meta_path = REPO / "models" / "model.json"
    val = out["curves"]["validation"]
    tradeoff = ConfidenceTradeoff.from_dict({
        "measured_on": f"{val['clips']} validation clips (validation speakers of the training corpora and the "
        "unseen validation corpus), top probability of each clip, no voice profile",
        "points": val["points"],
    })
    meta = dataclasses.replace(ModelMetadata.load(meta_path), uncertainty_threshold=out["chosen_threshold"],
                               confidence_tradeoff=tradeoff)
    meta_path.write_text(json.dumps(meta.to_dict(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {meta_path}: uncertainty_threshold {out['chosen_threshold']}")


def main() -> int:
    """Analyse the clips, print and write the curves (and the model's threshold with --write-model)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--write-model", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="take the curves from bench/results/confidence.json")
    args = ap.parse_args()
    path = REPO / "bench" / "results" / "confidence.json"
    if args.reuse:
        write_model(json.loads(path.read_text(encoding="utf-8")))
        return 0
    model = EmotionModel.load(REPO / "models").with_min_confidence(0.0)
    clips, part_of, _ = prepare_clips(root=DEFAULT_DATA)
    wanted = [c for c in clips if part_of[c.path] in {p for ps in GROUPS.values() for p in ps}]
    t0 = time.perf_counter()
    results = {}
    for clip, res in zip(wanted, analyze_paths([c.path for c in wanted], model, workers=args.workers,
                                               expand=False), strict=True):
        if res.ok and res.label is not None and res.speech_s > 0:
            results[clip.path] = (float(res.confidence or 0.0), res.label == clip.label)
    elapsed = time.perf_counter() - t0
    out: dict[str, object] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.node()}, {platform.machine()}, {platform.processor() or '?'}",
        "model": model.name,
        "clips_analysed": len(wanted),
        "seconds": round(elapsed, 1),
        "curves": {},
    }
    curves: dict[str, list[dict[str, float]]] = {}
    for name, parts in GROUPS.items():
        rows = [results[c.path] for c in wanted if part_of[c.path] in parts and c.path in results]
        conf = np.array([r[0] for r in rows])
        right = np.array([r[1] for r in rows])
        curves[name] = tradeoff_points(confidence=conf, right=right)
        out["curves"][name] = {"clips": len(rows), "accuracy_all": round(float(right.mean()), 4),
                               "points": curves[name]}
    val = curves["validation"]
    chosen = threshold_for_coverage(val)
    out["chosen_threshold"] = chosen
    out["rule"] = f"largest grid value answering >= {TARGET_COVERAGE:.0%} of the validation clips"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    for name, c in out["curves"].items():  # type: ignore[attr-defined]
        at = next(r for r in c["points"] if r["min_confidence"] == chosen)
        print(f"{name:42s} {c['clips']:5d} clips, all {c['accuracy_all']:.3f}; at {chosen:.2f}: "
              f"answered {at['coverage']:.3f}, right {at['accuracy']:.3f}")
    if args.write_model:
        write_model(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

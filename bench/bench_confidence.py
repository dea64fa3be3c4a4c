"""How the "uncertain" threshold trades answered clips against accuracy, for the shipped model.

The shipped read-out is fitted on every corpus except the test speakers of the training
corpora, so those test speakers are the only clips it never heard: every one of them goes
through ``ser analyze``'s own path (:func:`ser_engine.files.analysis.analyze_paths`, the shipped
``models/``, no voice profile). For each threshold ``t`` on a grid: coverage (share of clips whose
top probability is at least ``t``, i.e. answered) and accuracy (share right among the answered),
for all test speakers and per corpus. The threshold in ``model.json`` is not chosen here:
``ser-train encoder`` chose it on clips each scored by a read-out fitted without their corpus
(the curve ``model.json`` carries as ``confidence_tradeoff``); this script shows what it costs and
buys on voices the shipped model never heard.

Usage::

    python bench/bench_confidence.py [--workers 2]

Writes ``bench/results/confidence.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ser_engine.files.analysis import analyze_paths  # noqa: E402
from ser_engine.inference.model import EmotionModel  # noqa: E402
from training.crosscorpus import tradeoff_points  # noqa: E402
from training.encoder.run import prepare_clips  # noqa: E402
from training.pipeline import DEFAULT_DATA  # noqa: E402


def main() -> int:
    """Analyse the test speakers' clips, print and write the curves."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    path = REPO / "bench" / "results" / "confidence.json"
    shipped = EmotionModel.load(REPO / "models")
    threshold = shipped.metadata.uncertainty_threshold
    model = shipped.with_min_confidence(0.0)
    clips, part_of, _ = prepare_clips(root=DEFAULT_DATA)
    wanted = [c for c in clips if part_of[c.path] == "test"]
    t0 = time.perf_counter()
    results = {}
    for clip, res in zip(wanted, analyze_paths([c.path for c in wanted], model, workers=args.workers,
                                               expand=False), strict=True):
        if res.ok and res.label is not None and res.speech_s > 0:
            results[clip.path] = (float(res.confidence or 0.0), res.label == clip.label)
    elapsed = time.perf_counter() - t0
    groups = {"test speakers (all)": wanted}
    for corpus in sorted({c.corpus for c in wanted}):
        groups[f"test speakers: {corpus}"] = [c for c in wanted if c.corpus == corpus]
    out: dict[str, object] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.node()}, {platform.machine()}, {platform.processor() or '?'}",
        "model": model.name,
        "model_threshold": threshold,
        "clips_analysed": len(wanted),
        "seconds": round(elapsed, 1),
        "curves": {},
    }
    for name, members in groups.items():
        rows = [results[c.path] for c in members if c.path in results]
        conf = np.array([r[0] for r in rows])
        right = np.array([r[1] for r in rows])
        points = tradeoff_points(confidence=conf, right=right)
        out["curves"][name] = {"clips": len(rows), "accuracy_all": round(float(right.mean()), 4),  # type: ignore[index]
                               "points": points}
        answered = conf >= threshold
        print(f"{name:32s} {len(rows):5d} clips, all {right.mean():.3f}; at the model's {threshold:.2f}: "
              f"answered {answered.mean():.3f}, right {right[answered].mean() if answered.any() else float('nan'):.3f}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Writing ``docs/results.md``, ``docs/results.json``, confusion-matrix PNGs and ``models/MODEL_CARD.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.corpora import CORPORA
from training.evaluate import plot_confusion

__all__ = ["TARGETS", "write_model_card", "write_results"]

TARGETS = {
    "uar_all": 0.75,
    "uar_crema": 0.65,
    "uar_ravdess8": 0.72,
    "ece": 0.05,
    "size_mb": 10.0,
    "latency_ms": 2.0,
}


def _pct(v: Any) -> str:
    return "–" if v is None or v != v else f"{100 * v:.1f}"


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _targets(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    test = results["models"]["cnn2d"]["test"]
    r8 = results["ravdess8"]["test"]["all"]["uar"]
    ece = results["calibration"]["test_ece_after"]["all"]
    size = results["export"]["size_bytes"] / 1e6
    lat = results["export"]["latency_ms_1thread"]
    return [
        (
            "7-class UAR, all four corpora's test speakers",
            ">= 75 %",
            f"{_pct(test['all']['uar'])} %",
            _met(test["all"]["uar"] >= TARGETS["uar_all"]),
        ),
        (
            "7-class UAR, CREMA-D test speakers",
            ">= 65 %",
            f"{_pct(test['crema-d']['uar'])} %",
            _met(test["crema-d"]["uar"] >= TARGETS["uar_crema"]),
        ),
        ("RAVDESS 8-class UAR, test actors", ">= 72 %", f"{_pct(r8)} %", _met(r8 >= TARGETS["uar_ravdess8"])),
        ("ECE after temperature scaling (test, all)", "<= 5 %", f"{_pct(ece)} %", _met(ece <= TARGETS["ece"])),
        ("model size", "<= 10 MB", f"{size:.2f} MB", _met(size <= TARGETS["size_mb"])),
        ("one 3 s window, ONNX Runtime, 1 thread", "<= 2 ms", f"{lat:.2f} ms", _met(lat <= TARGETS["latency_ms"])),
    ]


def _model_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| model | val UAR | test acc | test UAR | test macro-F1 | " + " | ".join(f"{c} UAR" for c in CORPORA) + " |",
        "|---|---|---|---|---|" + "---|" * len(CORPORA),
    ]
    for name, m in results["models"].items():
        t = m["test"]
        row = [
            name,
            _pct(m["val"]["uar"]),
            _pct(t["all"]["accuracy"]),
            _pct(t["all"]["uar"]),
            _pct(t["all"]["macro_f1"]),
        ]
        row += [_pct(t[c]["uar"]) if c in t else "–" for c in CORPORA]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _per_class(metrics: dict[str, Any]) -> list[str]:
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for lab, v in metrics["per_class"].items():
        lines.append(f"| {lab} | {_pct(v['precision'])} | {_pct(v['recall'])} | {_pct(v['f1'])} | {v['support']} |")
    return lines


def write_results(*, results: dict[str, Any], docs_dir: Path, quick: bool = False) -> None:
    """Write the Markdown report, the JSON and the confusion matrices."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    fig_dir = docs_dir / "figures"
    shipped = results["models"]["cnn2d"]["test"]
    labels = results["labels"]
    pngs = []
    for key, m in shipped.items():
        name = f"confusion_cnn2d_{key}.png"
        plot_confusion(
            confusion=m["confusion"],
            labels=labels,
            title=f"shipped 2D CNN, test speakers: {key} (UAR {_pct(m['uar'])} %)",
            path=fig_dir / name,
        )
        pngs.append((key, name))
    r8 = results["ravdess8"]["test"]["all"]
    plot_confusion(
        confusion=r8["confusion"],
        labels=r8["labels"],
        title=f"RAVDESS 8 classes, test actors (UAR {_pct(r8['uar'])} %)",
        path=fig_dir / "confusion_ravdess8.png",
    )
    pngs.append(("ravdess 8-class", "confusion_ravdess8.png"))
    svm = results["models"]["svm"]["test"]["all"]
    plot_confusion(
        confusion=svm["confusion"],
        labels=labels,
        title=f"SVM baseline, test speakers (UAR {_pct(svm['uar'])} %)",
        path=fig_dir / "confusion_svm_all.png",
    )
    pngs.append(("svm baseline, all", "confusion_svm_all.png"))

    cal = results["calibration"]
    sp = results["split"]
    lines = ["# Results: speech emotion recognition on speakers never seen in training", ""]
    if quick:
        lines += ["> **SMOKE RUN (`--quick`)**: a few clips and one epoch; these numbers mean nothing.", ""]
    lines += [
        f"Produced by `{results['provenance']['command']}` on {results['provenance'].get('date', '')} "
        f"(git {results['provenance'].get('git_commit', '?')}), total {results['timings_min'].get('total', '?')} min on this 2-core machine. "  # noqa: E501
        "Every figure is on **test speakers** (never used for training or model selection) unless marked *val*; "
        "clip-level predictions average the window probabilities over the clip's speech windows, as `ser analyze` does.",  # noqa: E501
        "",
        "## Targets",
        "",
        "| target | goal | measured | |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _targets(results)]
    lines += [
        "",
        "## Data and protocol",
        "",
        f"* Split `{sp['file']}` (sha256 `{sp['sha256'][:12]}…`), speaker-disjoint: clips train {sp['clips']['train']}, "  # noqa: E501
        f"val {sp['clips']['val']}, test {sp['clips']['test']}.",
    ]
    for corpus, parts in sp["speakers"].items():
        lines.append(
            f"  * {corpus}: val {', '.join(s.split(':')[1] for s in parts['val']) or '–'}; test {', '.join(s.split(':')[1] for s in parts['test'])}; train {len(parts['train'])} speaker{'' if len(parts['train']) == 1 else 's'}"  # noqa: E501
        )
    lines += [
        "* Windows exactly as the app presents them: 3 s every 0.5 s (`ser_engine.features.frame_windows`, short clips "
        "centre-padded with zeros), log-mel 64 bands by `ser_engine.features.Featurizer`, windows rejected by "
        f"`{results['provenance'].get('silence_policy')}` are not used (a clip with no accepted window keeps all).",
        "* Normalisation: per-band mean/std of the training speakers' windows, stored in `model.json`.",
        f"* Augmentation on training audio only, after the split, {results['provenance'].get('n_augmented_copies')} precomputed copies per clip: "  # noqa: E501
        f"{results['provenance'].get('augmentation', '')}. SpecAugment-style time/frequency masks on batches.",
        "* Labels harmonised to 7 classes (RAVDESS calm → neutral, TESS ps → surprised); CREMA-D has no surprised. "
        "UAR = mean recall over the classes present.",
        "",
        "## All models (7 classes, test speakers unless marked val)",
        "",
    ]
    lines += _model_table(results)
    lines += [
        "",
        "Baselines use clip-pooled log-mel mean+std (128 features) on clean training clips; the Keras models train on "
        "clean + augmented windows. The seeds' 1D CNN and CNN+BiLSTM got a short budget (see `docs/results.json`), "
        "as did each search trial.",
        "",
        "## Shipped model (2D CNN) per corpus",
        "",
        "| test set | clips | accuracy | UAR | macro-F1 | ECE before T | ECE after T |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, m in shipped.items():
        lines.append(
            f"| {key} | {m['n']} | {_pct(m['accuracy'])} | {_pct(m['uar'])} | {_pct(m['macro_f1'])} | "
            f"{_pct(cal['test_ece_before'].get(key))} | {_pct(cal['test_ece_after'].get(key))} |"
        )
    lines += [
        "",
        f"Temperature {cal['temperature']:.3f}, fitted on validation speakers (clip-level NLL); validation ECE "
        f"{_pct(cal['val_ece']['before'])} % → {_pct(cal['val_ece']['after'])} %.",
        "",
        "### Per class, all test speakers",
        "",
    ]
    lines += _per_class(shipped["all"])
    lines += ["", "### Per class, CREMA-D test speakers", "", *_per_class(shipped["crema-d"])]
    lines += [
        "",
        "## RAVDESS, 8 classes (keeps calm)",
        "",
        f"Same features, split and augmentation; the network starts from the 7-class trunk (trained on training speakers only) "  # noqa: E501
        f"with a new 8-way head, fine-tuned on the {len(sp['speakers']['ravdess']['train'])} RAVDESS training actors, selected on the "  # noqa: E501
        f"validation actors, tested once on actors {', '.join(s.split(':')[1] for s in sp['speakers']['ravdess']['test'])}.",  # noqa: E501
        "",
        f"Test accuracy {_pct(r8['accuracy'])} %, **UAR {_pct(r8['uar'])} %**, macro-F1 {_pct(r8['macro_f1'])} % "
        f"({r8['n']} clips). Published speaker-independent anchors: 62.3 % UAR (5-fold ResLSTM), 68.3 % (wav2vec2-base, 3 held-out actors). "  # noqa: E501
        "Four test actors make this figure noisy (± several points).",
        "",
        "",
    ]
    lines += _per_class(r8)
    s = results["search"]
    lines += [
        "",
        "## Hyper-parameter search (validation speakers only)",
        "",
        f"Random search over `{json.dumps(s['space'])}`; budget: {s['budget']}. The best trial's configuration is then trained with the full budget.",  # noqa: E501
        "",
        "| trial | val UAR | architecture | lr | label smoothing | time mask | freq mask | mixup | freq warp | EMA |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in s["trials"]:
        lines.append(
            f"| {t['trial']}{' (best)' if t['trial'] == s['best_trial'] else ''} | {_pct(t['val_uar'])} | {json.dumps(t['arch_params'])} | "  # noqa: E501
            f"{t['learning_rate']} | {t['label_smoothing']} | {t['time_mask_max']} | {t['freq_mask_max']} | "
            f"{t.get('mixup_alpha', 0.0)} | {t.get('freq_warp', 0.0)} | {t.get('ema_decay', 0.0)} |"
        )
    if results.get("exploration"):
        e = results["exploration"]
        lines += ["", "### Recipe exploration (validation speakers only)", "", e["description"], ""]
        lines += ["| recipe | val UAR all | RAVDESS | CREMA-D | SAVEE | minutes |", "|---|---|---|---|---|---|"]
        for r in e["runs"]:
            lines.append(
                f"| {r['recipe']} | {_pct(r['val_uar'])} | {_pct(r['ravdess'])} | {_pct(r['crema_d'])} | "
                f"{_pct(r['savee'])} | {r['minutes']} |"
            )
    q = results["int8"]
    lines += ["", "## Export, int8 quantisation, speed", ""]
    ex = results["export"]
    lines.append(
        f"tf2onnx (opset 17, input `features` (batch, time, 64) with a dynamic time axis); ONNX/Keras parity max abs probability "  # noqa: E501
        f"difference {ex['parity_max_abs_prob_diff']:.1e} (limit 1e-4). Shipped graph {ex['size_bytes'] / 1e6:.2f} MB, "
        f"{ex['latency_ms_1thread']:.2f} ms per 3 s window (ONNX Runtime, 1 thread, median)."
    )
    if q.get("ok"):
        lines += [
            "",
            "| graph | val UAR | val accuracy | ms / window (1 thread) | size |",
            "|---|---|---|---|---|",
            f"| float32 | {_pct(q['fp32']['val_uar'])} | {_pct(q['fp32']['val_accuracy'])} | {q['fp32']['latency_ms']} | {q['fp32']['size_bytes'] / 1e6:.2f} MB |",  # noqa: E501
            f"| int8 (static QDQ, per-channel) | {_pct(q['int8']['val_uar'])} | {_pct(q['int8']['val_accuracy'])} | {q['int8']['latency_ms']} | {q['int8']['size_bytes'] / 1e6:.2f} MB |",  # noqa: E501
            "",
            f"int8 shipped: {'yes' if q['ship_int8'] else 'no'} (rule: faster here and under one UAR point lost on validation; "  # noqa: E501
            f"cost {q['uar_cost_points']} points, faster: {q['faster']}). The parity check is made on the float32 "
            "export; when the int8 graph is shipped, every test figure above (and the temperature) is measured on "
            "the int8 graph itself, through ONNX Runtime.",
        ]
    else:
        lines.append(f"int8 quantisation failed: {q.get('error')}")
    lines += ["", "## Confusion matrices", ""]
    lines += [f"![{k}](figures/{n})" for k, n in pngs]
    if results.get("notes"):
        lines += ["", "## Notes on this run", ""]
        lines += [f"* {n}" for n in results["notes"]]
    lines += ["", "## Time per stage (minutes)", "", "| stage | min |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in results["timings_min"].items()]
    lines += [
        "",
        "Feature caching: a second run with the same FeatureConfig, split and augmentation seed reads the cache "
        "(`~/.cache/ser/features`) and skips decoding and featurization.",
        "",
        "## Limits",
        "",
        "* Acted, read English speech from few speakers (TESS: two, SAVEE: four, both held out whole); CREMA-D's 91 "
        "voices are the closest to real users. Expect lower accuracy on spontaneous speech, other languages and accents, "  # noqa: E501
        "children, far-field or noisy microphones.",
        "* The test sets are small per speaker group; differences of a few points between models are within noise.",
        "",
    ]
    (docs_dir / "results.md").write_text("\n".join(lines), encoding="utf-8")
    slim = json.loads(json.dumps(results, default=str))
    (docs_dir / "results.json").write_text(json.dumps(slim, indent=1) + "\n", encoding="utf-8")


def write_model_card(*, results: dict[str, Any], path: Path, quick: bool = False) -> None:
    """``models/MODEL_CARD.md``: intended use, data, honest metrics per corpus, limits."""
    shipped = results["models"]["cnn2d"]["test"]
    cal = results["calibration"]
    ex = results["export"]
    r8 = results["ravdess8"]["test"]["all"]
    lines = [
        "# Model card: ser-cnn2d (default model)",
        "",
    ]
    if quick:
        lines += ["> **SMOKE RUN**: not a usable model.", ""]
    lines += [
        "## What it is",
        f"A small 2D convolutional network ({results['models']['cnn2d']['params']:,} parameters, {ex['size_bytes'] / 1e6:.2f} MB ONNX) "  # noqa: E501
        "that reads 3 s of 16 kHz mono audio as 64 log-mel bands and outputs 7 emotion classes: angry, disgust, fearful, "  # noqa: E501
        "happy, neutral, sad, surprised. Probabilities are `softmax(logits / T)` with T = "
        f"{cal['temperature']:.3f} fitted on validation speakers. {ex['latency_ms_1thread']:.2f} ms per window on one CPU thread.",  # noqa: E501
        "",
        (
            "The shipped graph is int8 (static QDQ quantisation calibrated on training windows): it was faster here "
            f"and lost {results['int8']['uar_cost_points']} UAR points on validation speakers; all figures below are "
            "measured on it."
            if ex.get("int8_shipped")
            else "The shipped graph is float32 (int8 quantisation was tried; see `docs/results.md`)."
        ),
        "",
        "## Intended use",
        "Live monitoring and file analysis of the *expressed* emotional tone of one adult speaker in English, as a "
        "demonstration and research aid. Not for decisions about people (hiring, health, policing, security), not a "
        "lie or mood detector, not validated on children, clinical populations, or non-English speech.",
        "",
        "## Data",
        "RAVDESS (speech, 24 actors), CREMA-D (91 actors), TESS (2 actresses), SAVEE (4 actors), all acted. "
        "Speaker-disjoint split `training/splits/speakers.json`: TESS YAF and one SAVEE speaker are test-only; "
        "RAVDESS 4 validation + 4 test actors; CREMA-D 9 validation + 18 test actors. Augmentation (noise, gain, "
        "shift, speed/pitch/tempo, reverberation, band-limiting) on training audio only.",
        "",
        "## Metrics on speakers never seen in training or selection",
        "",
        "| test set | clips | accuracy | UAR | macro-F1 | ECE |",
        "|---|---|---|---|---|---|",
    ]
    for key, m in shipped.items():
        lines.append(
            f"| {key} | {m['n']} | {_pct(m['accuracy'])} % | {_pct(m['uar'])} % | {_pct(m['macro_f1'])} % | {_pct(m['ece'])} % |"  # noqa: E501
        )
    lines += [
        "",
        f"RAVDESS 8 classes (separate fine-tuned head, not shipped): UAR {_pct(r8['uar'])} % on 4 test actors.",
        "Targets and their status: see `docs/results.md`.",
        "",
        "## Known limits",
        "* Acted emotions are exaggerated and read from a few fixed sentences; real conversational speech is subtler and "  # noqa: E501
        "will be classified less accurately, with more neutral/sad confusion.",
        "* Few speakers (TESS two, SAVEE four, all SAVEE male); accuracy varies strongly from voice to voice.",
        "* English only; 3 s windows; one speaker at a time; music, laughter and overlapping talk are out of scope.",
        "* CREMA-D has no 'surprised' clips, so 'surprised' is learnt from RAVDESS, TESS and SAVEE only.",
        *[f"* {n}" for n in results.get("card_limits", [])],
        "",
        "## Provenance",
        f"Trained by `{results['provenance']['command']}` (git {results['provenance'].get('git_commit', '?')}); "
        "libraries, split hash, configuration and date are in `model.json`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")

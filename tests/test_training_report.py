"""The evaluation report renders from the committed results, with honest target verdicts."""

from __future__ import annotations

import json
from pathlib import Path

from training.report import TARGETS, write_model_card, write_results

ROOT = Path(__file__).resolve().parent.parent


def _results() -> dict:
    return json.loads((ROOT / "docs" / "results.json").read_text())


def test_report_renders_every_section_and_figure(tmp_path: Path) -> None:
    results = _results()
    write_results(results=results, docs_dir=tmp_path)
    md = (tmp_path / "results.md").read_text()
    for heading in (
        "## Targets",
        "## All models",
        "## Shipped model",
        "## RAVDESS, 8 classes",
        "## Hyper-parameter search",
        "## Export, int8",
    ):
        assert heading in md
    for name in ("decision_tree", "knn", "svm", "cnn1d", "cnn_bilstm", "cnn2d"):
        assert f"| {name} |" in md
    pngs = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert "confusion_cnn2d_all.png" in pngs and "confusion_ravdess8.png" in pngs
    for name in pngs:
        assert f"figures/{name}" in md
    assert json.loads((tmp_path / "results.json").read_text())["labels"] == results["labels"]


def test_target_verdicts_follow_the_numbers(tmp_path: Path) -> None:
    results = _results()
    uar = results["models"]["cnn2d"]["test"]["all"]["uar"]
    write_results(results=results, docs_dir=tmp_path)
    line = next(
        x for x in (tmp_path / "results.md").read_text().splitlines() if x.startswith("| 7-class UAR, all four")
    )
    assert f"{100 * uar:.1f} %" in line
    assert line.endswith("| met |") == (uar >= TARGETS["uar_all"])
    # flip the number and the verdict flips
    results["models"]["cnn2d"]["test"]["all"]["uar"] = 0.99 if uar < TARGETS["uar_all"] else 0.10
    write_results(results=results, docs_dir=tmp_path)
    line = next(
        x for x in (tmp_path / "results.md").read_text().splitlines() if x.startswith("| 7-class UAR, all four")
    )
    assert line.endswith("| met |") != (uar >= TARGETS["uar_all"])


def test_model_card_states_per_corpus_metrics(tmp_path: Path) -> None:
    results = _results()
    write_model_card(results=results, path=tmp_path / "MODEL_CARD.md")
    card = (tmp_path / "MODEL_CARD.md").read_text()
    for corpus in ("ravdess", "crema-d", "tess", "savee"):
        assert f"| {corpus} |" in card
    assert "Intended use" in card and "Known limits" in card
    crema = results["models"]["cnn2d"]["test"]["crema-d"]["uar"]
    assert f"{100 * crema:.1f} %" in card


def test_committed_report_matches_committed_results() -> None:
    results = _results()
    md = (ROOT / "docs" / "results.md").read_text()
    assert f"{100 * results['models']['cnn2d']['test']['all']['uar']:.1f} %" in md
    meta = json.loads((ROOT / "models" / "model.json").read_text())
    assert abs(meta["temperature"] - results["calibration"]["temperature"]) < 1e-9
    assert meta["metrics"]["test_speakers"]["all"]["uar"] == round(results["models"]["cnn2d"]["test"]["all"]["uar"], 4)

"""The corpus overview figure (training/overview.py, ser-train overview) on the real corpora."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.corpora import CORPORA, HARMONISED_LABELS, CorpusError, corpus_summary, corpus_table
from training.overview import EMOTION_COLORS, CorpusOverview, corpus_overview, plot_corpus_overview

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def overview(corpus_dir: Path) -> list[CorpusOverview]:
    return corpus_overview(root=corpus_dir)


def test_counts_and_hours_equal_the_corpus_table(overview: list[CorpusOverview], corpus_dir: Path) -> None:
    summaries = corpus_summary(root=corpus_dir)
    assert [o.corpus for o in overview] == list(CORPORA) == [s.corpus for s in summaries]
    table = corpus_table(root=corpus_dir, summaries=summaries).splitlines()
    for o, s in zip(overview, summaries, strict=True):
        assert o.clips_per_label == s.clips_per_label
        assert o.speakers == s.speakers
        assert o.seconds.size == s.clips
        assert o.seconds.sum() / 3600 == pytest.approx(s.hours, rel=1e-9)
        # the printed row of `ser-train corpora`: labels, clips and hours as the figure draws them
        row = next(line for line in table if line.split()[:1] == [o.corpus]).split()
        assert [int(v) for v in row[-10:-3]] == [o.clips_per_label[lab] for lab in HARMONISED_LABELS]
        assert int(row[-3]) == o.clips
        assert float(row[-2]) == pytest.approx(o.seconds.sum() / 3600, abs=0.005)
    assert sum(o.clips for o in overview) == 23746
    every = np.concatenate([o.seconds for o in overview])
    assert (every > 0.3).all()
    assert (every < 30).all()


def test_figure_is_written_and_shows_the_emotions(overview: list[CorpusOverview], tmp_path: Path) -> None:
    from matplotlib.image import imread

    path = plot_corpus_overview(overview=overview, path=tmp_path / "sub" / "overview.png")
    assert path.is_file()
    assert path.stat().st_size > 50_000
    img = imread(str(path))
    assert img.shape[0] > 600
    assert img.shape[1] > 1200
    rgb = np.round(img[..., :3] * 255).astype(int).reshape(-1, 3)
    present = {tuple(px) for px in np.unique(rgb, axis=0)}
    for lab, hexcol in EMOTION_COLORS.items():
        colour = tuple(int(hexcol[i : i + 2], 16) for i in (1, 3, 5))
        assert colour in present, f"{lab} bars missing"


def test_figure_for_a_subset_and_a_missing_corpus(corpus_dir: Path, tmp_path: Path) -> None:
    two = corpus_overview(root=corpus_dir, corpora=["savee", "casia"])
    assert [o.clips for o in two] == [480, 1200]
    assert plot_corpus_overview(overview=two, path=tmp_path / "two.png").stat().st_size > 10_000
    with pytest.raises(CorpusError, match="not found"):
        corpus_overview(root=tmp_path, corpora=["savee"])


def test_colours_are_the_apps() -> None:
    from desktop_app.palette import emotion_color

    assert {lab: emotion_color(lab).upper() for lab in HARMONISED_LABELS} == EMOTION_COLORS

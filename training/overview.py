"""The corpus overview figure (``ser-train overview``): clips per emotion and clip durations, per corpus.

:func:`corpus_overview` reads every corpus through its adapter
(:func:`training.corpora.load_corpus`) and each clip's duration from
``MANIFEST.tsv`` or, failing that, the file's header (as ``ser-train corpora``
counts hours); :func:`plot_corpus_overview` draws it with matplotlib's Agg
backend into ``docs/figures/corpus_overview.png``. The emotion colours are the
app's (``desktop_app/palette.py``, checked for colour-vision deficiencies),
repeated here so that training needs no Qt; a test keeps them equal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from training.corpora import CORPORA, CORPUS_INFO, HARMONISED_LABELS, CorpusError, load_corpus

__all__ = ["EMOTION_COLORS", "CorpusOverview", "corpus_overview", "default_figure_path", "plot_corpus_overview"]

EMOTION_COLORS: dict[str, str] = {
    "angry": "#FF5221",
    "disgust": "#35B87A",
    "fearful": "#AB66D9",
    "happy": "#F1E543",
    "neutral": "#7F7F7F",
    "sad": "#43F8E0",
    "surprised": "#E79FFF",
}
"""The app's emotion colours (``desktop_app.palette``)."""


def default_figure_path() -> Path:
    """``docs/figures/corpus_overview.png`` of the checkout."""
    return Path(__file__).resolve().parent.parent / "docs" / "figures" / "corpus_overview.png"


@dataclass(frozen=True)
class CorpusOverview:
    """What the figure shows of one corpus.

    Attributes
    ----------
    corpus, language : str
    speakers : int
    clips_per_label : dict of str to int
        Usable clips per harmonised label (every label, zeros included).
    seconds : ndarray, shape (n_clips,), float64
        Duration of each usable clip.
    """

    corpus: str
    language: str
    speakers: int
    clips_per_label: dict[str, int]
    seconds: npt.NDArray[np.float64]

    @property
    def clips(self) -> int:
        """Total usable clips over all labels."""
        return sum(self.clips_per_label.values())


def corpus_overview(*, root: str | Path, corpora: Iterable[str] = CORPORA) -> list[CorpusOverview]:
    """Clips per label and clip durations of each corpus, from the adapters.

    Parameters
    ----------
    root : path
        The data folder (``../shared/data/ser``).
    corpora : iterable of str
        Names from ``CORPORA``.

    Returns
    -------
    list of CorpusOverview, in the order of ``corpora``

    Raises
    ------
    CorpusError
        A corpus cannot be read (the figure is never drawn with a corpus missing).
    """
    from training.corpora import _clip_seconds, _manifest_seconds

    root = Path(root)
    manifest = _manifest_seconds(root)
    out = []
    for name in corpora:
        clips, _ = load_corpus(root=root, corpus=name)
        counts = Counter(c.label for c in clips)
        seconds = np.array([_clip_seconds(clip_path=c.path, root=root, manifest=manifest) for c in clips])
        out.append(
            CorpusOverview(
                corpus=name,
                language=CORPUS_INFO[name].language,
                speakers=len({c.speaker for c in clips}),
                clips_per_label={lab: counts.get(lab, 0) for lab in HARMONISED_LABELS},
                seconds=seconds.astype(np.float64),
            )
        )
    if not out:
        raise CorpusError("no corpus to draw")
    return out


def plot_corpus_overview(*, overview: Sequence[CorpusOverview], path: str | Path, dpi: int = 130) -> Path:
    """Draw the overview, one row per corpus: clips per emotion (stacked), the same as shares, clip durations.

    Parameters
    ----------
    overview : sequence of CorpusOverview
    path : path
        PNG to write (its folder is created).
    dpi : int

    Returns
    -------
    Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = list(overview)
    n = len(rows)
    fig = Figure(figsize=(14.5, 0.5 * n + 2.0), dpi=dpi, layout="constrained")
    ax_clips, ax_share, ax_dur = fig.subplots(1, 3, sharey=True, width_ratios=(1.25, 0.8, 1.05))
    ypos = np.arange(n)[::-1]  # first corpus on top
    counts = np.array([[r.clips_per_label[lab] for lab in HARMONISED_LABELS] for r in rows], dtype=float)
    totals = counts.sum(axis=1)
    shares = 100.0 * counts / np.maximum(totals, 1)[:, None]
    for ax, values in ((ax_clips, counts), (ax_share, shares)):
        left = np.zeros(n)
        for j, lab in enumerate(HARMONISED_LABELS):
            ax.barh(
                ypos,
                values[:, j],
                left=left,
                height=0.72,
                color=EMOTION_COLORS[lab],
                edgecolor="#202020",
                linewidth=0.5,
            )
            left += values[:, j]
        ax.grid(axis="x", color="#DDDDDD", linewidth=0.6)
        ax.set_axisbelow(True)
    for y, total in zip(ypos, totals, strict=True):
        ax_clips.text(total + totals.max() * 0.01, y, f"{total:,.0f}", va="center", fontsize=8.5)
    ax_clips.set_xlim(0, totals.max() * 1.13)
    ax_clips.set_xlabel("usable clips per emotion")
    ax_share.set_xlim(0, 100)
    ax_share.set_xticks([0, 25, 50, 75, 100])
    ax_share.set_xlabel("share of the corpus's clips, %")
    ax_share.tick_params(axis="y", left=False)

    data = [r.seconds for r in rows]
    box = ax_dur.boxplot(
        data,
        positions=ypos,
        orientation="horizontal",
        widths=0.6,
        whis=(5, 95),
        showfliers=False,
        patch_artist=True,
        medianprops={"color": "#000000", "linewidth": 1.4},
    )
    for patch in box["boxes"]:
        patch.set(facecolor="#D9D9D9", edgecolor="#202020")
    top = max(float(np.percentile(s, 95)) for s in data if s.size)
    for y, r in zip(ypos, rows, strict=True):
        ax_dur.text(
            top * 1.04,
            y,
            f"median {np.median(r.seconds):.1f} s\n{r.seconds.sum() / 3600:.2f} h",
            va="center",
            fontsize=8,
        )
    ax_dur.set_xlim(0, top * 1.33)
    ax_dur.set_xlabel("clip duration, s (box: quartiles, median;\nwhiskers: 5th-95th percentile)")
    ax_dur.grid(axis="x", color="#DDDDDD", linewidth=0.6)
    ax_dur.set_axisbelow(True)
    ax_dur.tick_params(axis="y", left=False)
    # the box plot set its own y ticks on the shared axis: corpus names last
    ax_clips.set_yticks(ypos, [f"{r.corpus}\n{r.language}, {r.speakers} speakers" for r in rows], fontsize=8.5)
    ax_clips.set_ylim(-0.6, n - 0.4)

    handles = [Patch(facecolor=EMOTION_COLORS[lab], edgecolor="#202020", label=lab) for lab in HARMONISED_LABELS]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False, fontsize=9.5)
    total_clips = sum(r.clips for r in rows)
    total_h = sum(float(r.seconds.sum()) for r in rows) / 3600
    fig.suptitle(
        f"The {n} corpora as the adapters read them: {total_clips:,} clips, {total_h:.1f} h (ser-train overview)",
        fontsize=11,
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out

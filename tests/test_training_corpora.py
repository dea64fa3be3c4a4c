"""Corpus adapters on the real shared files, and their handling of bad names."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from training.corpora import CORPORA, HARMONISED_LABELS, CorpusError, load_all, load_corpus

pytestmark = pytest.mark.corpus

EXPECTED = {
    "ravdess": {
        "angry": 192,
        "disgust": 192,
        "fearful": 192,
        "happy": 192,
        "neutral": 288,
        "sad": 192,
        "surprised": 192,
    },
    "crema-d": {"angry": 1271, "disgust": 1271, "fearful": 1271, "happy": 1271, "neutral": 1087, "sad": 1271},
    "tess": {lab: 400 for lab in HARMONISED_LABELS},
    "savee": {"angry": 60, "disgust": 60, "fearful": 60, "happy": 60, "neutral": 120, "sad": 60, "surprised": 60},
}
SPEAKERS = {"ravdess": 24, "crema-d": 91, "tess": 2, "savee": 4}


@pytest.mark.parametrize("corpus", CORPORA)
def test_counts_per_label_and_speaker(corpus_dir: Path, corpus: str) -> None:
    clips, skipped = load_corpus(root=corpus_dir, corpus=corpus)
    assert dict(Counter(c.label for c in clips)) == EXPECTED[corpus]
    assert len({c.speaker for c in clips}) == SPEAKERS[corpus]
    assert skipped == []
    assert all(c.label in HARMONISED_LABELS for c in clips)
    assert all(c.speaker.startswith(corpus + ":") for c in clips)


def test_ravdess_fine_labels_keep_calm(corpus_dir: Path) -> None:
    clips, _ = load_corpus(root=corpus_dir, corpus="ravdess")
    fine = Counter(c.fine_label for c in clips)
    assert fine["calm"] == 192 and fine["neutral"] == 96
    assert all(c.label == "neutral" for c in clips if c.fine_label == "calm")
    assert Counter(c.gender for c in clips) == {"m": 720, "f": 720}
    assert {c.intensity for c in clips} == {"normal", "strong"}


def test_tess_quirks(corpus_dir: Path) -> None:
    clips, _ = load_corpus(root=corpus_dir, corpus="tess")
    bite = [c for c in clips if Path(c.path).name == "OA_bite_neutral.ogg"]
    assert len(bite) == 1 and bite[0].speaker == "tess:OAF" and bite[0].label == "neutral"
    # folder spellings OAF_Pleasant_surprise / YAF_pleasant_surprised / OAF_Fear all map
    surprised = Counter(c.speaker for c in clips if c.label == "surprised")
    assert surprised == {"tess:OAF": 200, "tess:YAF": 200}
    assert Counter(c.speaker for c in clips if c.label == "fearful") == {"tess:OAF": 200, "tess:YAF": 200}


def test_load_all_total(corpus_dir: Path) -> None:
    clips, skipped = load_all(root=corpus_dir)
    assert len(clips) == 1440 + 7442 + 2800 + 480
    assert len({c.path for c in clips}) == len(clips)
    assert skipped == []


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def test_bad_names_are_skipped_with_reasons(tmp_path: Path) -> None:
    # empty placeholder files: the adapters read names only
    _touch(tmp_path / "ravdess" / "Actor_01" / "03-01-05-01-01-01-01.flac")
    _touch(tmp_path / "ravdess" / "Actor_01" / "03-01-09-01-01-01-01.flac")  # unknown emotion
    _touch(tmp_path / "ravdess" / "Actor_02" / "03-01-05-01-01-01-01.flac")  # actor/folder mismatch
    _touch(tmp_path / "ravdess" / "Actor_01" / "notes.flac")
    _touch(tmp_path / "crema-d" / "1001_DFA_ANG_XX.ogg")
    _touch(tmp_path / "crema-d" / "1001_DFA_XYZ_XX.ogg")
    _touch(tmp_path / "tess" / "YAF_happy" / "YAF_dog_happy.ogg")
    _touch(tmp_path / "tess" / "YAF_happy" / "YAF_dog_sad.ogg")  # folder disagrees
    _touch(tmp_path / "tess" / "YAF_happy" / "OAF_dog_happy.ogg")  # speaker disagrees
    _touch(tmp_path / "savee" / "DC_a01.flac")
    _touch(tmp_path / "savee" / "XX_a01.flac")
    clips, skipped = load_all(root=tmp_path)
    assert len(clips) == 4
    reasons = {Path(s.path).name + "@" + Path(s.path).parent.name: s.reason for s in skipped}
    assert len(skipped) == 7
    assert "unknown RAVDESS emotion code 09" in reasons["03-01-09-01-01-01-01.flac@Actor_01"]
    assert "Actor_02" in reasons["03-01-05-01-01-01-01.flac@Actor_02"]
    assert "XYZ" in reasons["1001_DFA_XYZ_XX.ogg@crema-d"]
    assert "folder says" in reasons["YAF_dog_sad.ogg@YAF_happy"]
    assert "speaker OAF" in reasons["OAF_dog_happy.ogg@YAF_happy"]
    assert all(s.reason for s in skipped)


def test_missing_or_empty_corpus_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="corpus folder not found"):
        load_corpus(root=tmp_path, corpus="savee")
    (tmp_path / "savee").mkdir()
    with pytest.raises(CorpusError, match="no usable savee clips"):
        load_corpus(root=tmp_path, corpus="savee")
    with pytest.raises(CorpusError, match="unknown corpus"):
        load_corpus(root=tmp_path, corpus="emodb")

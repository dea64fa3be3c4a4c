"""Corpus adapters: RAVDESS (speech), CREMA-D, TESS and SAVEE.

Every adapter walks one corpus folder of ``../shared/data/ser`` and returns the
clips it understood plus the files it skipped, each with the reason. Labels are
harmonised to seven classes (``HARMONISED_LABELS``); RAVDESS alone can also be
read with its eight classes (``RAVDESS_LABELS``, keeping ``calm``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CORPORA",
    "HARMONISED_LABELS",
    "RAVDESS_LABELS",
    "Clip",
    "CorpusError",
    "Skipped",
    "load_all",
    "load_corpus",
]

HARMONISED_LABELS: tuple[str, ...] = ("angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
RAVDESS_LABELS: tuple[str, ...] = ("angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
CORPORA: tuple[str, ...] = ("ravdess", "crema-d", "tess", "savee")
AUDIO_SUFFIXES = (".flac", ".ogg", ".wav")


class CorpusError(RuntimeError):
    """A corpus folder is missing or unusable (message names the folder)."""


@dataclass(frozen=True)
class Clip:
    """One labelled utterance.

    Attributes
    ----------
    path : str
        Absolute path of the audio file.
    corpus : str
        One of ``CORPORA``.
    speaker : str
        Corpus-qualified speaker id, e.g. ``ravdess:01``, ``crema-d:1001``.
    gender : str or None
        ``"m"``/``"f"`` where the corpus tells it.
    sentence : str
        Sentence (or TESS word) id.
    intensity : str or None
        Corpus intensity code where known (RAVDESS ``normal``/``strong``,
        CREMA-D ``LO``/``MD``/``HI``).
    label : str
        Harmonised 7-class label.
    fine_label : str
        Corpus-native label mapped to the 8-class vocabulary (keeps ``calm``).
    """

    path: str
    corpus: str
    speaker: str
    gender: str | None
    sentence: str
    intensity: str | None
    label: str
    fine_label: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Skipped:
    """A file an adapter did not use, and why."""

    path: str
    reason: str


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def _to_harmonised(fine: str) -> str:
    return "neutral" if fine == "calm" else fine


# RAVDESS ----------------------------------------------------------------
_RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
_RAVDESS_RE = re.compile(r"^03-01-(\d\d)-(0[12])-(0[12])-(0[12])-(\d\d)$")


def _ravdess(root: Path) -> tuple[list[Clip], list[Skipped]]:
    clips: list[Clip] = []
    skipped: list[Skipped] = []
    for p in _audio_files(root):
        m = _RAVDESS_RE.match(p.stem)
        if not m:
            skipped.append(Skipped(str(p), "name does not match 03-01-EE-II-SS-RR-AA (audio-only speech)"))
            continue
        emo, inten, stmt, _rep, actor = m.groups()
        if emo not in _RAVDESS_EMOTIONS:
            skipped.append(Skipped(str(p), f"unknown RAVDESS emotion code {emo}"))
            continue
        if not 1 <= int(actor) <= 24:
            skipped.append(Skipped(str(p), f"actor {actor} outside 01-24"))
            continue
        if p.parent.name != f"Actor_{actor}":
            skipped.append(Skipped(str(p), f"actor {actor} in the name but the file is in {p.parent.name}"))
            continue
        fine = _RAVDESS_EMOTIONS[emo]
        clips.append(
            Clip(
                path=str(p),
                corpus="ravdess",
                speaker=f"ravdess:{actor}",
                gender="m" if int(actor) % 2 == 1 else "f",
                sentence=stmt,
                intensity="normal" if inten == "01" else "strong",
                label=_to_harmonised(fine),
                fine_label=fine,
            )
        )
    return clips, skipped


# CREMA-D ----------------------------------------------------------------
_CREMA_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
_CREMA_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})$")


def _crema(root: Path) -> tuple[list[Clip], list[Skipped]]:
    clips: list[Clip] = []
    skipped: list[Skipped] = []
    for p in _audio_files(root):
        m = _CREMA_RE.match(p.stem)
        if not m:
            skipped.append(Skipped(str(p), "name does not match AAAA_SSS_EEE_LL"))
            continue
        actor, sentence, emo, level = m.groups()
        if emo not in _CREMA_EMOTIONS:
            skipped.append(Skipped(str(p), f"unknown CREMA-D emotion code {emo}"))
            continue
        # Levels LO/MD/HI are known; XX (and the corpus's one-off "X") mean unspecified.
        intensity = level if level in ("LO", "MD", "HI") else None
        fine = _CREMA_EMOTIONS[emo]
        clips.append(
            Clip(
                path=str(p),
                corpus="crema-d",
                speaker=f"crema-d:{actor}",
                gender=None,
                sentence=sentence,
                intensity=intensity,
                label=fine,
                fine_label=fine,
            )
        )
    return clips, skipped


# TESS -------------------------------------------------------------------
_TESS_EMOTIONS = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "surprised",
    "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
    "sad": "sad",
}
_TESS_FILE_RE = re.compile(r"^(OAF|YAF|OA|YA)_([a-z]+)_([a-z_]+)$", re.IGNORECASE)
_TESS_DIR_RE = re.compile(r"^(OAF|YAF)_(.+)$", re.IGNORECASE)


def _tess(root: Path) -> tuple[list[Clip], list[Skipped]]:
    clips: list[Clip] = []
    skipped: list[Skipped] = []
    for p in _audio_files(root):
        dm = _TESS_DIR_RE.match(p.parent.name)
        fm = _TESS_FILE_RE.match(p.stem)
        if not dm or not fm:
            skipped.append(Skipped(str(p), "name does not match <SPK>_<emotion>/<SPK>_<word>_<emotion>"))
            continue
        dir_spk, dir_emo = dm.group(1).upper(), dm.group(2).lower()
        file_spk, word, file_emo = fm.group(1).upper(), fm.group(2).lower(), fm.group(3).lower()
        # The published corpus names one file OA_bite_neutral: the speaker is
        # taken from the folder when the file's prefix is a truncation of it.
        if file_spk != dir_spk and not dir_spk.startswith(file_spk):
            skipped.append(Skipped(str(p), f"speaker {file_spk} in the name but the folder is {p.parent.name}"))
            continue
        emo_file = _TESS_EMOTIONS.get(file_emo)
        emo_dir = _TESS_EMOTIONS.get(dir_emo)
        if emo_file is None:
            skipped.append(Skipped(str(p), f"unknown TESS emotion {file_emo!r}"))
            continue
        if emo_dir is not None and emo_dir != emo_file:
            skipped.append(Skipped(str(p), f"emotion {file_emo!r} in the name but the folder says {dir_emo!r}"))
            continue
        clips.append(
            Clip(
                path=str(p),
                corpus="tess",
                speaker=f"tess:{dir_spk}",
                gender="f",
                sentence=word,
                intensity=None,
                label=emo_file,
                fine_label=emo_file,
            )
        )
    return clips, skipped


# SAVEE ------------------------------------------------------------------
_SAVEE_EMOTIONS = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}
_SAVEE_RE = re.compile(r"^(DC|JE|JK|KL)_(a|d|f|h|n|sa|su)(\d\d)$")


def _savee(root: Path) -> tuple[list[Clip], list[Skipped]]:
    clips: list[Clip] = []
    skipped: list[Skipped] = []
    for p in _audio_files(root):
        m = _SAVEE_RE.match(p.stem)
        if not m:
            skipped.append(Skipped(str(p), "name does not match <SPK>_<code>NN"))
            continue
        spk, code, num = m.groups()
        fine = _SAVEE_EMOTIONS[code]
        clips.append(
            Clip(
                path=str(p),
                corpus="savee",
                speaker=f"savee:{spk}",
                gender="m",
                sentence=f"{code}{num}",
                intensity=None,
                label=fine,
                fine_label=fine,
            )
        )
    return clips, skipped


_ADAPTERS: dict[str, tuple[str, Callable[[Path], tuple[list[Clip], list[Skipped]]]]] = {
    "ravdess": ("ravdess", _ravdess),
    "crema-d": ("crema-d", _crema),
    "tess": ("tess", _tess),
    "savee": ("savee", _savee),
}


def load_corpus(*, root: str | Path, corpus: str) -> tuple[list[Clip], list[Skipped]]:
    """Read one corpus.

    Parameters
    ----------
    root : path
        The data folder holding ``ravdess/``, ``crema-d/``, ``tess/``, ``savee/``.
    corpus : str
        One of ``CORPORA``.

    Returns
    -------
    clips : list of Clip, sorted by path
    skipped : list of Skipped

    Raises
    ------
    CorpusError
        Unknown corpus name, or its folder missing or holding no audio.
    """
    if corpus not in _ADAPTERS:
        raise CorpusError(f"unknown corpus {corpus!r}; known: {', '.join(CORPORA)}")
    folder_name, adapter = _ADAPTERS[corpus]
    folder = Path(root) / folder_name
    if not folder.is_dir():
        raise CorpusError(f"{folder}: corpus folder not found")
    clips, skipped = adapter(folder)
    if not clips:
        raise CorpusError(f"{folder}: no usable {corpus} clips ({len(skipped)} files skipped)")
    return sorted(clips, key=lambda c: c.path), skipped


def load_all(*, root: str | Path, corpora: Iterable[str] = CORPORA) -> tuple[list[Clip], list[Skipped]]:
    """Read several corpora; clips and skipped files are concatenated."""
    all_clips: list[Clip] = []
    all_skipped: list[Skipped] = []
    for name in corpora:
        clips, skipped = load_corpus(root=root, corpus=name)
        all_clips.extend(clips)
        all_skipped.extend(skipped)
    return all_clips, all_skipped

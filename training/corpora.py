"""Corpus adapters for the eleven corpora of ``../shared/data/ser``.

RAVDESS (speech), CREMA-D, TESS, SAVEE (English), ASED (Amharic), nEMO
(Polish), CASIA (Mandarin), UEM (Spanish), TurEV-DB (Turkish), IndoWave
(Indonesian) and emotiontts (Korean). Every adapter walks one corpus folder and
returns the clips it understood plus the files it skipped, each with the
reason. Labels are harmonised to seven classes (``HARMONISED_LABELS``); calm
(RAVDESS, TurEV) becomes ``neutral`` and stays ``calm`` in ``fine_label``, so
RAVDESS can also be read with its eight classes (``RAVDESS_LABELS``).
IndoWave's ``disappointed`` has no class and is skipped.
:func:`corpus_summary` / :func:`corpus_table` count clips, speakers, hours and
skipped files per corpus (``ser-train corpora``). See ``docs/corpora.md``.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "CORPORA",
    "CORPUS_INFO",
    "HARMONISED_LABELS",
    "RAVDESS_LABELS",
    "Clip",
    "CorpusError",
    "CorpusInfo",
    "CorpusSummary",
    "Skipped",
    "corpus_summary",
    "corpus_table",
    "load_all",
    "load_corpus",
]

HARMONISED_LABELS: tuple[str, ...] = ("angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
RAVDESS_LABELS: tuple[str, ...] = ("angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
AUDIO_SUFFIXES = (".flac", ".ogg", ".wav")


class CorpusInfo(NamedTuple):
    """Where a corpus lives under the data folder, its language and what it is."""

    folder: str
    language: str
    description: str


CORPUS_INFO: dict[str, CorpusInfo] = {
    "ravdess": CorpusInfo("ravdess", "English (North American)", "RAVDESS speech, 24 actors, 8 emotions"),
    "crema-d": CorpusInfo("crema-d", "English (US)", "CREMA-D, 91 actors, 12 sentences, 6 emotions"),
    "tess": CorpusInfo("tess", "English (Canadian)", "TESS, 2 actresses, 200 words, 7 emotions"),
    "savee": CorpusInfo("savee", "English (British)", "SAVEE, 4 male speakers, 7 emotions"),
    "ased": CorpusInfo("ased", "Amharic", "ASED v1, 65 speakers recorded where they chose, 5 emotions"),
    "nemo": CorpusInfo("nemo", "Polish", "nEMO, 9 actors, 90 sentences, 6 emotions"),
    "casia": CorpusInfo("casia", "Mandarin", "CASIA public subset, 4 speakers, 6 emotions"),
    "uem-es": CorpusInfo("uem-es", "Spanish (Spain)", "Universidad Europea de Madrid student recordings, 7 emotions"),
    "turev": CorpusInfo("turev", "Turkish", "TurEV-DB, 6 speakers, single words, 4 emotions"),
    "indowave": CorpusInfo("indowave", "Indonesian", "IndoWaveSentiment, 10 actors, 5 emotions"),
    "emotiontts-ko": CorpusInfo("emotiontts-ko", "Korean", "emotiontts open database, emotional part, 15 speakers"),
}
"""Every corpus: name -> (folder under the data folder, language, short description)."""

CORPORA: tuple[str, ...] = tuple(CORPUS_INFO)
"""All corpus names; the first four (the English ones of v0.1) keep their order."""


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
    language : str
        The corpus's language (``CORPUS_INFO``), filled in by :func:`load_corpus`.
    """

    path: str
    corpus: str
    speaker: str
    gender: str | None
    sentence: str
    intensity: str | None
    label: str
    fine_label: str
    language: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-serialisable dict."""
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


def _fold(text: str) -> str:
    """Lower case without accents (``Alegría`` -> ``alegria``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _majority(votes: Counter[str]) -> str | None:
    """Return the most common value, or None when there is none or a tie."""
    ranked = votes.most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


_Result = tuple[list[Clip], list[Skipped]]


# The steps every corpus shares -----------------------------------------------
# Each corpus below is one parser: what a file's name (and folder) says about its clip, or why
# the file is skipped. :func:`_read` walks the corpus folder with it and makes the clips; the
# table :data:`_ADAPTERS` at the end names every corpus's parser.
class _Fields(NamedTuple):
    """What one file says about its clip (the rest of :class:`Clip` is the same for every corpus)."""

    speaker: str  # the corpus's own speaker id; the clip's is "<corpus>:<speaker>"
    sentence: str
    fine_label: str  # the corpus label in the 8-class vocabulary; harmonised by _read (calm -> neutral)
    gender: str | None = None
    intensity: str | None = None


_Parser = Callable[[Path, Path], "_Fields | str"]
"""``(file, corpus folder) -> its fields``, or the reason the file is skipped."""


def _read(*, root: Path, corpus: str, parse: _Parser, gender_by_majority: bool = False) -> _Result:
    """Read every audio file under ``root`` with ``parse``: the clips, and the skipped files with reasons.

    With ``gender_by_majority`` a speaker's gender is the majority of the genders their clips'
    names give (None on a tie or when none does): a corpus whose gender field is inconsistent
    for a few clips.
    """
    clips: list[Clip] = []
    skipped: list[Skipped] = []
    for p in _audio_files(root):
        fields = parse(p, root)
        if isinstance(fields, str):
            skipped.append(Skipped(str(p), fields))
            continue
        clips.append(
            Clip(
                path=str(p),
                corpus=corpus,
                speaker=f"{corpus}:{fields.speaker}",
                gender=fields.gender,
                sentence=fields.sentence,
                intensity=fields.intensity,
                label=_to_harmonised(fields.fine_label),
                fine_label=fields.fine_label,
            )
        )
    if gender_by_majority:
        votes: dict[str, Counter[str]] = {}
        for c in clips:
            if c.gender is not None:
                votes.setdefault(c.speaker, Counter())[c.gender] += 1
        gender = {spk: _majority(v) for spk, v in votes.items()}
        clips = [replace(c, gender=gender.get(c.speaker)) for c in clips]
    return clips, skipped


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


def _ravdess(p: Path, _root: Path) -> _Fields | str:
    m = _RAVDESS_RE.match(p.stem)
    if not m:
        return "name does not match 03-01-EE-II-SS-RR-AA (audio-only speech)"
    emo, inten, stmt, _rep, actor = m.groups()
    if emo not in _RAVDESS_EMOTIONS:
        return f"unknown RAVDESS emotion code {emo}"
    if not 1 <= int(actor) <= 24:
        return f"actor {actor} outside 01-24"
    if p.parent.name != f"Actor_{actor}":
        return f"actor {actor} in the name but the file is in {p.parent.name}"
    return _Fields(
        speaker=actor,
        sentence=stmt,
        fine_label=_RAVDESS_EMOTIONS[emo],
        gender="m" if int(actor) % 2 == 1 else "f",
        intensity="normal" if inten == "01" else "strong",
    )


# CREMA-D ----------------------------------------------------------------
_CREMA_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
_CREMA_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})$")


def _crema(p: Path, _root: Path) -> _Fields | str:
    m = _CREMA_RE.match(p.stem)
    if not m:
        return "name does not match AAAA_SSS_EEE_LL"
    actor, sentence, emo, level = m.groups()
    if emo not in _CREMA_EMOTIONS:
        return f"unknown CREMA-D emotion code {emo}"
    # Levels LO/MD/HI are known; XX (and the corpus's one-off "X") mean unspecified.
    intensity = level if level in ("LO", "MD", "HI") else None
    return _Fields(speaker=actor, sentence=sentence, fine_label=_CREMA_EMOTIONS[emo], intensity=intensity)


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


def _tess(p: Path, _root: Path) -> _Fields | str:
    dm = _TESS_DIR_RE.match(p.parent.name)
    fm = _TESS_FILE_RE.match(p.stem)
    if not dm or not fm:
        return "name does not match <SPK>_<emotion>/<SPK>_<word>_<emotion>"
    dir_spk, dir_emo = dm.group(1).upper(), dm.group(2).lower()
    file_spk, word, file_emo = fm.group(1).upper(), fm.group(2).lower(), fm.group(3).lower()
    # The published corpus names one file OA_bite_neutral: the speaker is
    # taken from the folder when the file's prefix is a truncation of it.
    if file_spk != dir_spk and not dir_spk.startswith(file_spk):
        return f"speaker {file_spk} in the name but the folder is {p.parent.name}"
    emo_file = _TESS_EMOTIONS.get(file_emo)
    emo_dir = _TESS_EMOTIONS.get(dir_emo)
    if emo_file is None:
        return f"unknown TESS emotion {file_emo!r}"
    if emo_dir is not None and emo_dir != emo_file:
        return f"emotion {file_emo!r} in the name but the folder says {dir_emo!r}"
    return _Fields(speaker=dir_spk, sentence=word, fine_label=emo_file, gender="f")


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


def _savee(p: Path, _root: Path) -> _Fields | str:
    m = _SAVEE_RE.match(p.stem)
    if not m:
        return "name does not match <SPK>_<code>NN"
    spk, code, num = m.groups()
    return _Fields(speaker=spk, sentence=f"{code}{num}", fine_label=_SAVEE_EMOTIONS[code], gender="m")


# ASED -------------------------------------------------------------------
# Folder NN<Emotion> and file-name letter+digit both give the emotion.
_ASED_EMOTIONS = {
    "n": ("01", "neutral"),
    "f": ("02", "fearful"),
    "h": ("03", "happy"),
    "s": ("04", "sad"),
    "a": ("05", "angry"),
}
_ASED_FOLDERS = {"neutral": "neutral", "fearful": "fearful", "happy": "happy", "sad": "sad", "angry": "angry"}
_ASED_DIR_RE = re.compile(r"^(\d\d)([A-Za-z]+)$")
_ASED_FILE_RE = re.compile(r"^([A-Za-z])(\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_ASED_GENDERS = {"01": "f", "02": "m"}


def _ased(p: Path, _root: Path) -> _Fields | str:
    dm = _ASED_DIR_RE.match(p.parent.name)
    fm = _ASED_FILE_RE.match(p.stem)
    if not dm or _fold(dm.group(2)) not in _ASED_FOLDERS:
        return f"folder {p.parent.name!r} is not one of 01Neutral..05Angry"
    if not fm:
        return "name does not match <xn>-<yy>-<aa>-<gg>-<bb>"
    dir_num, dir_emo = dm.group(1), _ASED_FOLDERS[_fold(dm.group(2))]
    letter, digit, sentence, _rep, gg, speaker = fm.groups()
    # The published corpus has one upper-case letter (04Sad/S4-...): letters
    # are read case-insensitively, the folder confirms the label.
    code = _ASED_EMOTIONS.get(letter.lower())
    if code is None:
        return f"unknown ASED emotion letter {letter!r}"
    if code[0] != f"0{digit}":
        return f"emotion letter {letter}{digit}: letter says {code[1]} but the number is {digit}"
    if code[1] != dir_emo or code[0] != dir_num:
        return f"emotion {letter}{digit} ({code[1]}) in the name but the folder is {p.parent.name}"
    # The gender field gg is inconsistent for a few clips (the corpus's own documentation
    # says so): it is one vote, and each speaker gets the majority of theirs (_read).
    return _Fields(speaker=speaker, sentence=sentence, fine_label=code[1], gender=_ASED_GENDERS.get(gg))


# nEMO -------------------------------------------------------------------
_NEMO_EMOTIONS = {
    "anger": "angry",
    "fear": "fearful",
    "happiness": "happy",
    "neutral": "neutral",
    "sadness": "sad",
    "surprised": "surprised",
}
_NEMO_RE = re.compile(r"^([A-Z]{2}\d)_([a-z]+)_(\d+)$")
_NEMO_GENDERS = {"female": "f", "male": "m", "f": "f", "m": "m"}


def _nemo_table(root: Path) -> dict[str, dict[str, str]] | None:
    """``data.tsv`` rows by file stem (speaker ids stripped), or None when absent."""
    tsv = root / "data.tsv"
    if not tsv.is_file():
        return None
    with tsv.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"file_id", "emotion", "speaker_id", "gender"} - set(reader.fieldnames or ())
        if missing:
            raise CorpusError(f"{tsv}: columns {', '.join(sorted(missing))} missing")
        rows: dict[str, dict[str, str]] = {}
        for row in reader:
            clean = {k: (v or "").strip() for k, v in row.items() if k is not None}
            rows[Path(clean["file_id"]).stem] = clean
    return rows


def _nemo_parser(root: Path) -> _Parser:
    """Make nEMO's parser: file names checked against ``data.tsv``, read once, which also gives genders."""
    table = _nemo_table(root)
    # Gender per speaker from data.tsv (majority of the speaker's rows).
    votes: dict[str, Counter[str]] = {}
    for entry in (table or {}).values():
        g = _NEMO_GENDERS.get(entry["gender"].lower())
        if g is not None:
            votes.setdefault(entry["speaker_id"], Counter())[g] += 1
    gender = {spk: _majority(v) for spk, v in votes.items()}

    def parse(p: Path, _root: Path) -> _Fields | str:
        m = _NEMO_RE.match(p.stem)
        if not m:
            return "name does not match <speaker>_<emotion>_<n>"
        speaker, emo, num = m.groups()
        fine = _NEMO_EMOTIONS.get(emo)
        if fine is None:
            return f"unknown nEMO emotion {emo!r}"
        sentence = f"{emo}_{num}"
        row = table.get(p.stem) if table is not None else None
        if row is not None:
            if row["emotion"] != emo:
                return f"emotion {emo!r} in the name but data.tsv says {row['emotion']!r}"
            if row["speaker_id"] != speaker:
                return f"speaker {speaker} in the name but data.tsv says {row['speaker_id']!r}"
            sentence = row.get("normalized_text") or sentence
        return _Fields(speaker=speaker, sentence=sentence, fine_label=fine, gender=gender.get(speaker))

    return parse


def _nemo(root: Path) -> _Result:
    return _read(root=root, corpus="nemo", parse=_nemo_parser(root))


# CASIA ------------------------------------------------------------------
_CASIA_EMOTIONS = {
    "angry": "angry",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprise": "surprised",
}


def _casia(p: Path, root: Path) -> _Fields | str:
    rel = p.relative_to(root).parts
    if len(rel) != 3 or not p.stem.isdigit():
        return "path does not match <speaker>/<emotion>/<n>"
    speaker, emo = rel[0], rel[1]
    fine = _CASIA_EMOTIONS.get(emo.lower())
    if fine is None:
        return f"unknown CASIA emotion folder {emo!r}"
    return _Fields(speaker=speaker, sentence=p.stem, fine_label=fine)


# UEM Spanish ------------------------------------------------------------
_UEM_EMOTIONS = {
    "alegria": "happy",
    "asco": "disgust",
    "ira": "angry",
    "miedo": "fearful",
    "neutro": "neutral",
    "sorpresa": "surprised",
    "tristeza": "sad",
}


def _uem_parse(stem: str) -> tuple[str, str] | str:
    """``(emotion word, number or "")`` from a UEM name, or the reason it is unusable.

    Well-formed names are ``<Emotion>_<n>``; the published corpus also has
    ``Ira__7`` (doubled underscore) and ``Neutro`` (no number). Such names are
    accepted when exactly one emotion word and at most one number remain.
    """
    tokens = [t for t in re.split(r"[_\-\s]+", stem) if t]
    words, numbers, other = [], [], []
    for tok in tokens:
        m = re.fullmatch(r"([^\W\d_]+)(\d*)", tok)
        if tok.isdigit():
            numbers.append(tok)
        elif m and _fold(m.group(1)) in _UEM_EMOTIONS:
            words.append(_fold(m.group(1)))
            if m.group(2):
                numbers.append(m.group(2))
        else:
            other.append(tok)
    if len(set(words)) > 1:
        return f"name gives several emotions ({', '.join(sorted(set(words)))}): label ambiguous"
    if not words:
        return f"no UEM emotion word in the name (known: {', '.join(sorted(_UEM_EMOTIONS))})"
    if other:
        return f"name does not match <Emotion>_<n> (unexpected {other[0]!r}): label not certain"
    if len(numbers) > 1:
        return f"name does not match <Emotion>_<n> (numbers {', '.join(numbers)})"
    return words[0], (str(int(numbers[0])) if numbers else "")


def _uem(p: Path, root: Path) -> _Fields | str:
    rel = p.relative_to(root).parts
    if len(rel) != 2 or not rel[0].isdigit():
        return "path does not match <speaker number>/<Emotion>_<n>"
    parsed = _uem_parse(p.stem)
    if isinstance(parsed, str):
        return parsed
    word, num = parsed
    return _Fields(speaker=str(int(rel[0])), sentence=num, fine_label=_UEM_EMOTIONS[word])


# TurEV-DB ---------------------------------------------------------------
# Folder (English) and code (Turkish: kizgin, sakin, mutlu, hüzünlü) both give the emotion.
_TUREV_FOLDERS = {"angry": "angry", "calm": "calm", "happy": "happy", "sad": "sad"}
_TUREV_CODES = {"kz": "angry", "sk": "calm", "mt": "happy", "hl": "sad"}
_TUREV_RE = re.compile(r"^(\d{4})_([A-Za-z]{2})_(.+)$")


def _turev(p: Path, root: Path) -> _Fields | str:
    m = _TUREV_RE.match(p.stem)
    dir_emo = _TUREV_FOLDERS.get(p.parent.name.lower()) if p.parent != root else None
    if dir_emo is None:
        return f"folder {p.parent.name!r} is not one of Angry, Calm, Happy, Sad"
    if not m:
        return "name does not match <speaker>_<code>_<word>"
    speaker, code, word = m.groups()
    code_emo = _TUREV_CODES.get(code.lower())
    if code_emo is None:
        return f"unknown TurEV emotion code {code!r}"
    if code_emo != dir_emo:
        return f"code {code} ({code_emo}) in the name but the folder is {p.parent.name}"
    return _Fields(speaker=speaker, sentence=word, fine_label=dir_emo)


# IndoWave ---------------------------------------------------------------
_INDOWAVE_EMOTIONS = {"01": "neutral", "02": "happy", "03": "surprised", "04": "disgust", "05": "disappointed"}
_INDOWAVE_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def _indowave(p: Path, _root: Path) -> _Fields | str:
    m = _INDOWAVE_RE.match(p.stem)
    if not m:
        return "name does not match AA-EE-II-RR"
    actor, emo, inten, _rep = m.groups()
    if p.parent.name != f"Actor_{actor}":
        return f"actor {actor} in the name but the file is in {p.parent.name}"
    fine = _INDOWAVE_EMOTIONS.get(emo)
    if fine is None:
        return f"unknown IndoWave emotion code {emo}"
    if fine not in HARMONISED_LABELS:
        return f"label {fine!r} has no class in the model"
    return _Fields(speaker=actor, sentence="", fine_label=fine, intensity=inten)


# emotiontts Korean ------------------------------------------------------
# The number gives the emotion: 1-100 neutral, 101-200 happy, 201-300 angry, 301-400 sad.
_KO_BLOCKS = ("neutral", "happy", "angry", "sad")
_KO_RE = re.compile(r"^([a-z]{3})(\d{5})$")


def _emotiontts_ko(p: Path, _root: Path) -> _Fields | str:
    m = _KO_RE.match(p.stem)
    if not m:
        return "name does not match <speaker><NNNNN>"
    speaker, number = m.group(1), int(m.group(2))
    if p.parent.name != speaker:
        return f"speaker {speaker} in the name but the file is in {p.parent.name}"
    if not 1 <= number <= 100 * len(_KO_BLOCKS):
        return f"number {number} outside 1-400: no emotion"
    return _Fields(speaker=speaker, sentence=m.group(2), fine_label=_KO_BLOCKS[(number - 1) // 100])


def _reader(corpus: str, parse: _Parser, *, gender_by_majority: bool = False) -> Callable[[Path], _Result]:
    """Return the adapter of a corpus whose files ``parse`` reads one by one (see :func:`_read`)."""

    def adapter(root: Path) -> _Result:
        return _read(root=root, corpus=corpus, parse=parse, gender_by_majority=gender_by_majority)

    return adapter


_ADAPTERS: dict[str, Callable[[Path], _Result]] = {
    "ravdess": _reader("ravdess", _ravdess),
    "crema-d": _reader("crema-d", _crema),
    "tess": _reader("tess", _tess),
    "savee": _reader("savee", _savee),
    "ased": _reader("ased", _ased, gender_by_majority=True),
    "nemo": _nemo,  # its parser is made per folder: it reads data.tsv first
    "casia": _reader("casia", _casia),
    "uem-es": _reader("uem-es", _uem),
    "turev": _reader("turev", _turev),
    "indowave": _reader("indowave", _indowave),
    "emotiontts-ko": _reader("emotiontts-ko", _emotiontts_ko),
}
"""Each corpus's adapter: its folder -> the clips it understood and the files it skipped."""


def load_corpus(*, root: str | Path, corpus: str) -> tuple[list[Clip], list[Skipped]]:
    """Read one corpus.

    Parameters
    ----------
    root : path
        The data folder holding the corpus folders (``CORPUS_INFO[name].folder``).
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
    info = CORPUS_INFO[corpus]
    folder = Path(root) / info.folder
    if not folder.is_dir():
        raise CorpusError(f"{folder}: corpus folder not found")
    clips, skipped = _ADAPTERS[corpus](folder)
    if not clips:
        raise CorpusError(f"{folder}: no usable {corpus} clips ({len(skipped)} files skipped)")
    return sorted((replace(c, language=info.language) for c in clips), key=lambda c: c.path), skipped


def load_all(*, root: str | Path, corpora: Iterable[str] = CORPORA) -> tuple[list[Clip], list[Skipped]]:
    """Read several corpora; clips and skipped files are concatenated."""
    all_clips: list[Clip] = []
    all_skipped: list[Skipped] = []
    for name in corpora:
        clips, skipped = load_corpus(root=root, corpus=name)
        all_clips.extend(clips)
        all_skipped.extend(skipped)
    return all_clips, all_skipped


# Summary table (``ser-train corpora``) -----------------------------------
MANIFEST_NAME = "MANIFEST.tsv"


@dataclass(frozen=True)
class CorpusSummary:
    """What one corpus holds, as read by its adapter.

    Attributes
    ----------
    corpus, language : str
    speakers : int
        Distinct speakers among the usable clips.
    clips_per_label : dict of str to int
        Usable clips per harmonised label (every label of ``HARMONISED_LABELS``, zeros included).
    hours : float
        Duration of the usable clips (``MANIFEST.tsv``, else the files' headers).
    skipped : list of Skipped
    error : str or None
        Why the corpus could not be read at all (then every count is zero).
    """

    corpus: str
    language: str
    speakers: int = 0
    clips_per_label: dict[str, int] = field(default_factory=dict)
    hours: float = 0.0
    skipped: list[Skipped] = field(default_factory=list)
    error: str | None = None

    @property
    def clips(self) -> int:
        """Usable clips in total."""
        return sum(self.clips_per_label.values())

    def skipped_by_reason(self) -> dict[str, list[str]]:
        """Skipped file paths grouped by reason, largest group first."""
        groups: dict[str, list[str]] = {}
        for s in self.skipped:
            groups.setdefault(s.reason, []).append(s.path)
        return dict(sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def _manifest_seconds(root: Path) -> dict[str, float]:
    """Seconds per file (path relative to ``root``, ``/``-separated) from ``MANIFEST.tsv``; {} if absent."""
    path = root / MANIFEST_NAME
    if not path.is_file():
        return {}
    out: dict[str, float] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        if not {"path", "sample_rate", "frames"} <= set(reader.fieldnames or ()):
            return {}
        for row in reader:
            try:
                out[row["path"]] = int(row["frames"]) / int(row["sample_rate"])
            except (TypeError, ValueError, ZeroDivisionError):
                continue  # this file falls back to its header
    return out


def _clip_seconds(*, clip_path: str, root: Path, manifest: dict[str, float]) -> float:
    p = Path(clip_path)
    try:
        key = p.relative_to(root).as_posix()
    except ValueError:
        key = ""
    if key in manifest:
        return manifest[key]
    import soundfile as sf

    try:
        info = sf.info(str(p))
    except (RuntimeError, OSError):  # unreadable header: counted as 0 s (the features step reports it)
        return 0.0
    return float(info.frames) / float(info.samplerate)


def corpus_summary(*, root: str | Path, corpora: Iterable[str] = CORPORA) -> list[CorpusSummary]:
    """Count speakers, clips per label, hours and skipped files of each corpus.

    A corpus that cannot be read (folder missing, no usable clip) gets a row
    with its ``error`` instead of stopping the others.

    Parameters
    ----------
    root : path
        The data folder (``../shared/data/ser``).
    corpora : iterable of str
        Names from ``CORPORA``.

    Returns
    -------
    list of CorpusSummary, in the order of ``corpora``
    """
    root = Path(root)
    manifest = _manifest_seconds(root)
    out: list[CorpusSummary] = []
    for name in corpora:
        language = CORPUS_INFO[name].language if name in CORPUS_INFO else "?"
        try:
            clips, skipped = load_corpus(root=root, corpus=name)
        except CorpusError as exc:
            out.append(CorpusSummary(corpus=name, language=language, error=str(exc)))
            continue
        counts = Counter(c.label for c in clips)
        seconds = sum(_clip_seconds(clip_path=c.path, root=root, manifest=manifest) for c in clips)
        out.append(
            CorpusSummary(
                corpus=name,
                language=language,
                speakers=len({c.speaker for c in clips}),
                clips_per_label={lab: counts.get(lab, 0) for lab in HARMONISED_LABELS},
                hours=seconds / 3600.0,
                skipped=skipped,
            )
        )
    return out


def _render(rows: list[list[str]], *, right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def corpus_table(
    *,
    root: str | Path,
    corpora: Iterable[str] = CORPORA,
    examples: int = 3,
    summaries: Sequence[CorpusSummary] | None = None,
) -> str:
    """Render the ``ser-train corpora`` report as text.

    One row per corpus (language, speakers, usable clips per harmonised label,
    total clips, hours, skipped files) and a total row; then, per corpus with
    skipped files, each reason with its count and up to ``examples`` file names
    (relative to ``root``). Corpora that could not be read are listed last.

    Parameters
    ----------
    root : path
        The data folder.
    corpora : iterable of str
        Corpora to read (ignored when ``summaries`` is given).
    examples : int
        File names shown per skip reason.
    summaries : sequence of CorpusSummary, optional
        Already computed by :func:`corpus_summary` (saves reading twice).

    Returns
    -------
    str
        The table and skip report, ending with a newline.
    """
    root = Path(root)
    if summaries is None:
        summaries = corpus_summary(root=root, corpora=corpora)
    header = ["corpus", "language", "speakers", *HARMONISED_LABELS, "clips", "hours", "skipped"]
    rows = [header]
    for s in summaries:
        if s.error is not None:
            rows.append([s.corpus, s.language, "-", *("-" for _ in HARMONISED_LABELS), "-", "-", "-"])
            continue
        rows.append(
            [
                s.corpus,
                s.language,
                str(s.speakers),
                *(str(s.clips_per_label[lab]) for lab in HARMONISED_LABELS),
                str(s.clips),
                f"{s.hours:.2f}",
                str(len(s.skipped)),
            ]
        )
    ok = [s for s in summaries if s.error is None]
    rows.append(
        [
            "total",
            f"{len({s.language.split(' (')[0] for s in ok})} languages",
            str(sum(s.speakers for s in ok)),
            *(str(sum(s.clips_per_label[lab] for s in ok)) for lab in HARMONISED_LABELS),
            str(sum(s.clips for s in ok)),
            f"{sum(s.hours for s in ok):.2f}",
            str(sum(len(s.skipped) for s in ok)),
        ]
    )
    lines = _render(rows, right=set(range(2, len(header))))
    for s in ok:
        if not s.skipped:
            continue
        lines += ["", f"{s.corpus}: {len(s.skipped)} skipped"]
        for reason, paths in s.skipped_by_reason().items():
            names = []
            for path in paths[:examples]:
                try:
                    names.append(Path(path).relative_to(root).as_posix())
                except ValueError:
                    names.append(path)
            more = ", ..." if len(paths) > examples else ""
            lines.append(f"  {len(paths):5d}  {reason}: {', '.join(names)}{more}")
    failed = [s for s in summaries if s.error is not None]
    if failed:
        lines += ["", "not read:"] + [f"  {s.corpus}: {s.error}" for s in failed]
    return "\n".join(lines) + "\n"

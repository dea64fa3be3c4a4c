"""Speaker-disjoint train / validation / test splits and held-out corpora, committed.

The split is a list of speakers per part, per corpus, stored as JSON in
``training/splits/``. Corpora used for training have speaker-disjoint
``train`` / ``val`` / ``test`` parts. Whole corpora are held out of training:
``unseen_val`` corpora take part in model selection only (a new language, room
and microphone), ``unseen_test`` corpora only in the final report.
:func:`make_speaker_split` builds it from the clips with seeded shuffles;
:func:`assign` maps clips to parts and refuses clips whose speaker is not in
the split (a corpus changed under us).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.corpora import Clip

__all__ = [
    "DEFAULT_SPLIT_PATH",
    "HELD_OUT",
    "PARTS",
    "SplitError",
    "assign",
    "check_disjoint",
    "corpus_role",
    "load_split",
    "make_speaker_split",
    "save_split",
    "split_hash",
]

PARTS = ("train", "val", "test", "unseen_val", "unseen_test")
HELD_OUT: dict[str, tuple[str, ...]] = {
    "unseen_val": ("casia",),
    "unseen_test": ("uem-es", "emotiontts-ko"),
}
"""Corpora held out of training whole. CASIA (Mandarin) is the unseen-corpus
validation used for model selection; UEM (Spanish) and emotiontts (Korean) are
the unseen-corpus test, read only for the final report."""
_LEGACY = ("crema-d", "ravdess", "savee", "tess")  # split first with one shared generator (committed since v0.1)
DEFAULT_SPLIT_PATH = Path(__file__).resolve().parent / "splits" / "speakers.json"
DEFAULT_SEED = 20240601


class SplitError(ValueError):
    """A split is inconsistent (a speaker in two parts, an unknown speaker...)."""


def _shuffled(items: Sequence[str], rng: np.random.Generator) -> list[str]:
    order = rng.permutation(len(items))
    return [items[i] for i in order]


def corpus_role(corpus: str) -> str:
    """``"train"`` for a training corpus, else its held-out part (``"unseen_val"``/``"unseen_test"``)."""
    for part, names in HELD_OUT.items():
        if corpus in names:
            return part
    return "train"


def make_speaker_split(*, clips: Iterable[Clip], seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Choose the speakers of each part.

    Policy
    ------
    * Held-out corpora (:data:`HELD_OUT`): every speaker in ``unseen_val`` or
      ``unseen_test``; none of their clips is trained on.
    * RAVDESS (24 actors): 4 validation + 4 test actors, each half male / half
      female, drawn by a seeded shuffle within each gender.
    * CREMA-D (91 actors): seeded shuffle, 70 / 10 / 20 % (64 / 9 / 18).
    * TESS (2 speakers): OAF trains, YAF is held out for test (no validation
      speaker is left).
    * SAVEE (4 speakers): seeded shuffle, two train, one validation, one test.
    * Other training corpora: seeded shuffle (a generator per corpus, so adding
      a corpus changes no other corpus's split) of the speakers who have every
      label of their corpus; 10 / 20 % for validation / test with 20 or more
      speakers, else one validation and one (10-19 speakers: two) test speakers;
      speakers missing labels (TurEV 1157: angry and sad only) train.

    Parameters
    ----------
    clips : iterable of Clip
    seed : int

    Returns
    -------
    dict
        ``{"seed", "policy", "held_out", "corpora": {corpus: {part: [speakers]}}}``
    """
    rng = np.random.default_rng(seed)
    by_corpus: dict[str, dict[str, str | None]] = {}
    labels_of: dict[str, set[str]] = {}
    corpus_labels: dict[str, set[str]] = {}
    for c in clips:
        by_corpus.setdefault(c.corpus, {})[c.speaker] = c.gender
        labels_of.setdefault(c.speaker, set()).add(c.label)
        corpus_labels.setdefault(c.corpus, set()).add(c.label)
    out: dict[str, dict[str, list[str]]] = {}
    order_of_corpora = [c for c in _LEGACY if c in by_corpus] + sorted(set(by_corpus) - set(_LEGACY))
    for corpus in order_of_corpora:
        speakers = by_corpus[corpus]
        names = sorted(speakers)
        parts: dict[str, list[str]] = {p: [] for p in PARTS}
        role = corpus_role(corpus)
        if role != "train":
            parts[role] = names
        elif corpus == "ravdess":
            for g in ("f", "m"):
                group = _shuffled([s for s in names if speakers[s] == g], rng)
                parts["val"] += group[:2]
                parts["test"] += group[2:4]
                parts["train"] += group[4:]
        elif corpus == "tess":
            parts["train"] = [s for s in names if s.endswith("OAF")]
            parts["test"] = [s for s in names if s.endswith("YAF")]
        elif corpus in _LEGACY:
            order = _shuffled(names, rng)
            n = len(order)
            if corpus == "savee" or n < 10:
                n_val, n_test = 1, 1
            else:
                n_val, n_test = round(0.1 * n), round(0.2 * n)
            parts.update(val=order[:n_val], test=order[n_val : n_val + n_test], train=order[n_val + n_test :])
        else:
            own = np.random.default_rng([seed, zlib.crc32(corpus.encode())])
            complete = [s for s in names if labels_of[s] == corpus_labels[corpus]]
            order = _shuffled(complete, own)
            n = len(names)
            if n >= 20:
                n_val, n_test = round(0.1 * n), round(0.2 * n)
            elif n >= 10:
                n_val, n_test = 1, 2
            else:
                n_val, n_test = 1, 1
            parts["val"] = order[:n_val]
            parts["test"] = order[n_val : n_val + n_test]
            parts["train"] = [s for s in names if s not in parts["val"] and s not in parts["test"]]
        out[corpus] = {p: sorted(parts[p]) for p in PARTS}
    split = {
        "seed": seed,
        "policy": "speaker-disjoint within training corpora; whole corpora held out; see training.splits",
        "held_out": {k: list(v) for k, v in HELD_OUT.items()},
        "corpora": dict(sorted(out.items())),
    }
    check_disjoint(split)
    return split


def check_disjoint(split: dict[str, Any]) -> None:
    """Raise :class:`SplitError` when a speaker appears in two parts or a held-out corpus is trained on."""
    seen: dict[str, str] = {}
    for corpus, parts in split["corpora"].items():
        held = [p for p in ("unseen_val", "unseen_test") if corpus in split.get("held_out", {}).get(p, [])]
        if held and any(parts.get(p) for p in ("train", "val", "test")):
            raise SplitError(f"corpus {corpus} is held out ({held[0]}) but has speakers in train/val/test")
        for part in PARTS:
            for spk in parts.get(part, []):
                if spk in seen:
                    raise SplitError(f"speaker {spk} of {corpus} is in both {seen[spk]} and {part}")
                seen[spk] = part


def save_split(split: dict[str, Any], path: str | Path = DEFAULT_SPLIT_PATH) -> None:
    """Write ``split`` as JSON after checking it (:func:`check_disjoint`).

    Parameters
    ----------
    split : dict
        The split: ``corpora`` (speakers per part) and ``held_out``.
    path : path-like

    Raises
    ------
    SplitError
        A speaker is in two parts, or a held-out corpus has training speakers.
    """
    check_disjoint(split)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(split, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load_split(path: str | Path = DEFAULT_SPLIT_PATH) -> dict[str, Any]:
    """Read a split written by :func:`save_split` and check it.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict

    Raises
    ------
    SplitError
        Missing or invalid file, or a split that is not speaker-disjoint.
    """
    p = Path(path)
    try:
        split = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SplitError(f"{p}: split file not found (run `ser-train split`)") from exc
    except json.JSONDecodeError as exc:
        raise SplitError(f"{p}: not valid JSON ({exc})") from exc
    if not isinstance(split, dict) or "corpora" not in split:
        raise SplitError(f"{p}: not a split file (no 'corpora')")
    check_disjoint(split)
    return split


def split_hash(path: str | Path = DEFAULT_SPLIT_PATH) -> str:
    """SHA-256 of the split file's bytes (recorded in the model's provenance)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assign(*, clips: Iterable[Clip], split: dict[str, Any]) -> dict[str, list[Clip]]:
    """Map clips to ``train`` / ``val`` / ``test``.

    Raises
    ------
    SplitError
        A clip's speaker is not listed in the split.
    """
    part_of: dict[str, str] = {}
    for parts in split["corpora"].values():
        for part in PARTS:
            for spk in parts.get(part, []):
                part_of[spk] = part
    out: dict[str, list[Clip]] = {p: [] for p in PARTS}
    for c in clips:
        where = part_of.get(c.speaker)
        if where is None:
            raise SplitError(f"{c.path}: speaker {c.speaker} is not in the split")
        out[where].append(c)
    return out

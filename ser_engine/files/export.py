r"""The one exporter of results: CSV and JSON for ``ser analyze``, the app and live recordings.

File results (:class:`~ser_engine.files.analysis.FileResult`)
    :class:`ResultWriter` streams them as CSV or JSON to a text stream, one result
    at a time. ``ser analyze --format csv|json`` writes through it to stdout and the
    app's Export buttons write through it to files, so the same results give the
    same bytes in both.

    * CSV: :func:`csv_header` then :func:`csv_rows` per file. Without segments one
      row per file: ``path, ok, error, duration_s, speech_s, label, confidence,
      uncertain, p_<label>..., warning``. With segments each file row is followed by
      one row per analysis window and the columns ``kind, start_s, end_s, speech``
      come last, so every earlier column keeps its position.
    * JSON: a list of :meth:`FileResult.to_dict` objects, one per line
      (``segments`` empty unless asked for). A result holding a non-finite number
      is written as a failed result instead of bare ``NaN``.

Affect scores
    Only for a model with an affect output (``affect`` = its
    :attr:`~ser_engine.inference.model.EmotionModel.affect_names`, e.g. ``("arousal",
    "valence")``): one CSV column per dimension, named after it, right after the
    ``p_<label>`` columns (file rows, segment rows and live rows; empty without
    speech), and one JSON key per dimension after ``probabilities`` in each file
    object and at the end of each segment object (``null`` without speech).
    Without affect names (the default) the output is exactly as before.

Live predictions (:class:`~ser_engine.live.stream.Prediction`)
    :func:`prediction_header` and :func:`prediction_row` are the CSV a live
    recording writes beside its WAV (times relative to the recording's start);
    :func:`prediction_dict` is a line of ``ser listen --format jsonl``.

Names that are not valid UTF-8 are written with their undecodable bytes as
``\xNN`` escapes, so the output is always valid UTF-8.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TextIO

from ser_engine.errors import ParameterError

if TYPE_CHECKING:
    from ser_engine.files.analysis import FileResult
    from ser_engine.live.stream import Prediction

__all__ = ["AFFECT_MEANINGS", "FILE_COLUMNS", "PREDICTION_COLUMNS", "SEGMENT_COLUMNS", "ResultWriter", "affect_meaning",
           "affect_values", "csv_header",
           "csv_rows", "finite_result", "prediction_dict", "prediction_header", "prediction_row", "safe_text"]

FILE_COLUMNS = ("path", "ok", "error", "duration_s", "speech_s", "label", "confidence", "uncertain")
"""The first columns of a file row; then ``p_<label>...``, the affect names (if any) and ``warning``."""
SEGMENT_COLUMNS = ("kind", "start_s", "end_s", "speech")
"""The last columns with segments (after ``warning``)."""
PREDICTION_COLUMNS = ("start_s", "end_s", "speech", "label", "confidence", "uncertain", "level_dbfs")
"""The first columns of a live recording's CSV; then ``p_<label>...`` and the affect names (if any)."""

AFFECT_MEANINGS = {
    "arousal": "probability that the voice is activated (high arousal, as in angry, fearful, happy, surprised) "
               "rather than calm (low arousal, as in neutral, sad)",
    "valence": "probability that the voice sounds positive (as in happy, surprised) rather than negative "
               "(as in angry, fearful, sad, disgust)",
}
"""What the usual affect dimensions' scores mean (``ser info``, the docs)."""

Format = Literal["csv", "json"]


def affect_meaning(name: str) -> str:
    """Say what an affect dimension's score means (:data:`AFFECT_MEANINGS`, or a generic sentence).

    Parameters
    ----------
    name : str
        An affect dimension (:attr:`~ser_engine.inference.model.EmotionModel.affect_names`).

    Returns
    -------
    str
    """
    return AFFECT_MEANINGS.get(name, f"probability of the high side of {name}")


def safe_text(text: str) -> str:
    r"""Make ``text`` encodable as UTF-8: undecodable bytes of a file name become ``\xNN``.

    Parameters
    ----------
    text : str
        Possibly holding surrogate escapes (``os.fsdecode`` of a non-UTF-8 name).

    Returns
    -------
    str
        Valid Unicode text.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape")
        return raw.decode("utf-8", "backslashreplace").encode("utf-8", "backslashreplace").decode("utf-8")


def _safe(obj: Any) -> Any:
    if isinstance(obj, str):
        return safe_text(obj)
    if isinstance(obj, dict):
        return {safe_text(str(k)): _safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_safe(v) for v in obj]
    return obj


def _fmt(v: float | None, digits: int = 3) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def affect_values(scores: dict[str, float], *, names: Sequence[str], digits: int = 6) -> dict[str, float | None]:
    """Return the JSON fields of affect scores: one per dimension, None where there is no score.

    Parameters
    ----------
    scores : dict
        Score per dimension (``FileResult.affect``, ``Segment.affect``, ``Prediction.affect``);
        empty without speech.
    names : sequence of str
        The model's affect dimensions (:attr:`~ser_engine.inference.model.EmotionModel.affect_names`).
    digits : int
        Decimals kept.

    Returns
    -------
    dict
        ``{name: rounded score or None}`` in the order of ``names`` (empty for no names).
    """
    return {k: None if scores.get(k) is None else round(scores[k], digits) for k in names}


def csv_header(*, labels: Sequence[str], segments: bool, affect: Sequence[str] = ()) -> list[str]:
    """Return the CSV header of file results.

    Parameters
    ----------
    labels : sequence of str
        The model's labels, in order (one ``p_<label>`` column each).
    segments : bool
        With the rows of the analysis windows: :data:`SEGMENT_COLUMNS` are added last.
    affect : sequence of str
        The model's affect dimensions (one column each, named after it); empty for none.

    Returns
    -------
    list of str
        ``path, ok, error, duration_s, speech_s, label, confidence, uncertain, p_<label>..., <affect>...,
        warning`` (then ``kind, start_s, end_s, speech`` with ``segments``).
    """
    head = [*FILE_COLUMNS, *(f"p_{k}" for k in labels), *affect, "warning"]
    return head + list(SEGMENT_COLUMNS) if segments else head


def csv_rows(result: FileResult, *, labels: Sequence[str], segments: bool,
             affect: Sequence[str] = ()) -> list[list[str | int]]:
    """Return the CSV rows of one file result (see :func:`csv_header`).

    Without ``segments``: one row. With ``segments``: the same file row (``kind`` =
    ``file``, empty ``start_s, end_s, speech``), then one row per analysis window
    (``kind`` = ``segment``: ``ok, error, duration_s, speech_s`` empty; ``label``,
    ``confidence`` (the label's probability) and ``uncertain`` empty on silence;
    ``warning`` the file's). A failed file has its file row only. The affect
    columns hold the file's mean scores or the window's, empty without speech.

    Parameters
    ----------
    result : FileResult
        One file's result.
    labels : sequence of str
        The model's labels, in order.
    segments : bool
        Also the rows of the windows.
    affect : sequence of str
        The model's affect dimensions; empty for none.

    Returns
    -------
    list of list
        The rows, each as long as :func:`csv_header`.
    """
    r = result
    d = _safe(r.to_dict())
    path, warning = d["path"], d["warning"] or ""
    row: list[str | int] = [path, int(r.ok), d["error"] or "", _fmt(r.duration_s), _fmt(r.speech_s),
                            r.label or "", _fmt(r.confidence, 4), int(r.uncertain) if r.ok else "",
                            *[_fmt(r.probabilities.get(k), 4) for k in labels],
                            *[_fmt(r.affect.get(k), 4) for k in affect], warning]
    if not segments:
        return [row]
    rows = [[*row, "file", "", "", ""]]
    for s in r.segments:
        conf = _fmt(s.probabilities.get(s.label), 4) if s.speech and s.label else ""
        rows.append([path, "", "", "", "", s.label or "", conf, int(s.uncertain) if s.speech else "",
                     *[_fmt(s.probabilities.get(k), 4) for k in labels],
                     *[_fmt(s.affect.get(k), 4) for k in affect], warning,
                     "segment", f"{s.start_s:.3f}", f"{s.end_s:.3f}", int(s.speech)])
    return rows


def _result_dict(result: FileResult, *, segments: bool, affect: Sequence[str]) -> dict[str, Any]:
    """:meth:`FileResult.to_dict` (text made safe) with the affect keys (see the module docstring)."""
    d = _safe(result.to_dict())
    if not segments:
        d["segments"] = []
    if not affect:
        return dict(d)
    for seg, s in zip(d["segments"], result.segments if segments else [], strict=True):
        seg.update(affect_values(s.affect, names=affect))
    out: dict[str, Any] = {}
    for key, value in d.items():
        out[key] = value
        if key == "probabilities":
            out.update(affect_values(result.affect, names=affect))
    return out


def result_json(result: FileResult, *, segments: bool, affect: Sequence[str] = ()) -> str:
    """One file result as a one-line JSON object (``segments`` empty unless asked for).

    A result holding a non-finite number is written as a failed result naming the
    problem, never as bare ``NaN``.

    Parameters
    ----------
    result : FileResult
    segments : bool
    affect : sequence of str
        The model's affect dimensions (one key each, per file and per segment); empty for none.

    Returns
    -------
    str
        JSON text without a newline.
    """
    result = finite_result(result, affect=affect)
    return json.dumps(_result_dict(result, segments=segments, affect=affect), ensure_ascii=False, allow_nan=False)


def finite_result(result: FileResult, *, affect: Sequence[str] = ()) -> FileResult:
    """Return ``result``, or a failed copy naming the problem when it holds a non-finite number.

    The CLI passes every result through it before writing and counting it, so the table,
    CSV and JSON agree that such a file failed (and the exit status says so), rather than
    one format showing ``nan`` as a success.

    Parameters
    ----------
    result : FileResult
    affect : sequence of str
        The model's affect dimensions; empty for none.

    Returns
    -------
    FileResult
    """
    d = _result_dict(result, segments=True, affect=affect)
    try:
        json.dumps(d, allow_nan=False)
    except ValueError:
        return dataclasses.replace(result, ok=False, error=f"{d['path']}: non-finite values in the result",
                                   label=None, confidence=None, probabilities={}, segments=[], affect={})
    return result


class ResultWriter:
    r"""Streams file results to a text stream as CSV or JSON.

    Call :meth:`begin`, then :meth:`write` once per result (in order), then :meth:`end`.

    Parameters
    ----------
    out : TextIO
        Where the text goes (opened with ``newline=""`` or ``"\n"``; lines end in ``\n``).
    fmt : {"csv", "json"}
    labels : sequence of str
        The model's labels, in order.
    segments : bool
        Also the analysis windows (CSV rows, or each JSON object's ``segments``).
    affect : sequence of str
        The model's affect dimensions (CSV columns, JSON keys); empty (the default) for none.
    """

    def __init__(self, out: TextIO, *, fmt: Format, labels: Sequence[str], segments: bool,
                 affect: Sequence[str] = ()) -> None:
        if fmt not in ("csv", "json"):
            raise ParameterError(f"export format must be 'csv' or 'json', got {fmt!r}")
        self.out = out
        self.fmt = fmt
        self.labels = list(labels)
        self.segments = segments
        self.affect = tuple(affect)
        self.count = 0
        self._csv = csv.writer(out, lineterminator="\n")

    def begin(self) -> None:
        """Write the CSV header or the JSON list's opening bracket."""
        if self.fmt == "json":
            self.out.write("[")
        else:
            self._csv.writerow(csv_header(labels=self.labels, segments=self.segments, affect=self.affect))

    def write(self, result: FileResult) -> None:
        """Write one file's result."""
        if self.fmt == "json":
            self.out.write(("," if self.count else "") + "\n  "
                           + result_json(result, segments=self.segments, affect=self.affect))
        else:
            self._csv.writerows(csv_rows(result, labels=self.labels, segments=self.segments, affect=self.affect))
        self.count += 1

    def end(self) -> None:
        """Close the JSON list (nothing to do for CSV)."""
        if self.fmt == "json":
            self.out.write("\n]\n" if self.count else "]\n")


def prediction_header(*, labels: Sequence[str], affect: Sequence[str] = ()) -> list[str]:
    """Return the header of a live recording's CSV.

    Parameters
    ----------
    labels : sequence of str
        The model's labels, in order.
    affect : sequence of str
        The model's affect dimensions (one column each); empty for none.

    Returns
    -------
    list of str
        ``start_s, end_s, speech, label, confidence, uncertain, level_dbfs, p_<label>..., <affect>...``.
    """
    return [*PREDICTION_COLUMNS, *(f"p_{lab}" for lab in labels), *affect]


def prediction_row(p: Prediction, *, start_s: float, end_s: float, labels: Sequence[str],
                   affect: Sequence[str] = ()) -> list[str | int]:
    """One live prediction as a row of :func:`prediction_header`.

    Parameters
    ----------
    p : Prediction
    start_s, end_s : float
        The window in seconds from the start of the recording (``start_s`` is clipped at 0).
    labels : sequence of str
    affect : sequence of str
        The model's affect dimensions; empty for none.

    Returns
    -------
    list
        ``confidence``, ``uncertain``, the probabilities and the affect scores are empty on silence.
    """
    return [f"{max(0.0, start_s):.3f}", f"{end_s:.3f}", int(p.speech), p.label or "",
            f"{p.confidence:.4f}" if p.speech else "", int(p.uncertain) if p.speech else "",
            f"{p.level_dbfs:.1f}",
            *[f"{p.probabilities[lab]:.4f}" if p.speech else "" for lab in labels],
            *[_fmt(p.affect.get(k), 4) if p.speech else "" for k in affect]]


def prediction_dict(p: Prediction, *, affect: Sequence[str] = ()) -> dict[str, Any]:
    """One live prediction as a JSON object (a line of ``ser listen --format jsonl``).

    Parameters
    ----------
    p : Prediction
    affect : sequence of str
        The model's affect dimensions: one key each after ``probabilities`` (null on
        silence); empty for none (then exactly :meth:`Prediction.to_dict`).

    Returns
    -------
    dict
    """
    d = p.to_dict()
    if not affect:
        return d
    out: dict[str, Any] = {}
    for key, value in d.items():
        out[key] = value
        if key == "probabilities":
            out.update(affect_values(p.affect if p.speech else {}, names=affect))
    return out

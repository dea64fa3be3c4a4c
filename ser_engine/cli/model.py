"""``ser calibrate`` (a voice profile from neutral speech) and ``ser info`` (the model's metadata).

``ser info`` never prints this machine's absolute paths: the model's folder is
named as it was given (``--model``, ``$SER_MODEL_DIR``) or as "the bundled model",
and a path under the home folder is shown from ``~``.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ser_engine import version
from ser_engine.cli.common import EXIT_OK, EXIT_USAGE, err, load_model, say

if TYPE_CHECKING:
    from ser_engine.inference.model import EmotionModel
    from ser_engine.inference.model_meta import ModelMetadata
    from ser_engine.inference.profile_check import HeldOutCheck

__all__ = ["check_files_held_out", "cmd_calibrate", "cmd_info", "held_out_lines", "model_location"]


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Run ``ser calibrate FILE... -o PROFILE.json``: make a voice profile and check it on held-out speech.

    The profile is written first; the held-out check (:func:`check_files_held_out`) then
    says how speech the profile did not see reads with it. A check that cannot be made
    is a note in the output: the profile stays written and the exit status is 0.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``ser calibrate`` options.

    Returns
    -------
    int
        The exit status.
    """
    from ser_engine.errors import AudioError, ParameterError, ProfileError
    from ser_engine.inference.profile import profile_from_files

    out = Path(args.output)
    if out.is_dir():
        raise ProfileError(f"{out}: is a folder; --output needs a file name such as {out / 'voice.json'}")
    if not out.parent.is_dir():
        raise ProfileError(f"{out}: the folder {out.parent} does not exist")
    _check_replaceable(out, inputs=args.files)
    name = args.name if args.name is not None else out.stem
    if not name.strip():
        err("error: --name must not be empty")
        return EXIT_USAGE
    model = load_model(args.model)
    profile = profile_from_files(args.files, model=model, name=name, gate_sensitivity=args.sensitivity)
    profile.save(out)

    n = len(args.files)
    say(f"voice profile {profile.name!r} written to {out}")
    say(f"  speech used: {profile.speech_s:.1f} s in {profile.n_windows} windows from {n} file{'s' * (n != 1)}")
    # The check comes after the profile is written and announced: whatever it finds, the profile stays.
    try:
        check = check_files_held_out(args.files, model=model, gate_sensitivity=args.sensitivity)
    except (AudioError, ParameterError, ProfileError) as exc:
        say(f"  note: the held-out check could not be made: {exc}; the profile was still written")
    else:
        for line in held_out_lines(check):
            say(f"  {line}")
    if getattr(args, "verbose", False):
        # The profile's own before/after: mean probabilities over the very windows it was made from,
        # so it says little about new speech (the held-out check above does); shown only on request.
        say(f"  on the calibration speech itself the model said {_top(profile.before)} before, "
            f"{_top(profile.after)} after calibration")
    say(f"  use it with: ser analyze --profile {out} ...  /  ser listen --profile {out}")
    return EXIT_OK


def _top(probs: dict[str, float]) -> str:
    """Name the most probable label with its probability: "neutral 0.36"."""
    k = max(probs, key=lambda lab: probs[lab])
    return f"{k} {probs[k]:.2f}"


def check_files_held_out(files: Sequence[str | os.PathLike[str]], *, model: EmotionModel,
                         gate_sensitivity: float) -> HeldOutCheck:
    """Run the held-out check on the audio a profile of ``files`` is made from.

    Each file is decoded as :func:`~ser_engine.inference.profile.profile_from_files` decodes
    it (:func:`~ser_engine.dsp.audio.iter_audio_blocks` at the model's rate), and the files
    are joined in the order given, sample after sample with nothing added between them: the
    check needs one recording to split in time. (The profile itself keeps the files apart,
    so a few of the check's windows span two files where no profile window does.)

    Parameters
    ----------
    files : sequence of path-like
        The recordings the profile was made from.
    model : EmotionModel
        The model the profile is made for.
    gate_sensitivity : float
        The speech gate sensitivity the profile was made with.

    Returns
    -------
    HeldOutCheck
        :func:`~ser_engine.inference.profile_check.check_held_out` of the joined audio, for ``"neutral"``.

    Raises
    ------
    ProfileError
        Too little speech to hold half of it out (the message says how much was found).
    AudioError
        A file could not be decoded this time (the message names it).
    ParameterError
        The model has no ``"neutral"`` label.
    """
    import numpy as np

    from ser_engine.dsp.audio import iter_audio_blocks
    from ser_engine.inference.profile_check import check_held_out

    sr = model.feature_config.sample_rate
    blocks = [block for f in files for block in iter_audio_blocks(f, sample_rate=sr)]
    audio = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return check_held_out(audio=audio, model=model, label="neutral", gate_sensitivity=gate_sensitivity)


def held_out_lines(check: HeldOutCheck) -> list[str]:
    """Say what the held-out check found, and plainly when calibration did not help.

    The same finding as the app's calibration dialog: a profile made from each half of the
    speech scored the other half's speech windows; "improved" means more of them read as the
    label (their most probable emotion) with calibration than without.

    Parameters
    ----------
    check : HeldOutCheck

    Returns
    -------
    list of str
        The figures, then, when calibration did not improve them, a line saying so.
    """
    label = check.label
    lines = [f"held-out check: your {label} speech read as {label} in {check.before_share * 100:.0f} % of windows "
             f"before calibration, {check.after_share * 100:.0f} % after (mean {label} probability "
             f"{check.before_mean:.2f} -> {check.after_mean:.2f}; {len(check.folds)} halves, "
             f"{check.n_held_out} windows scored)"]
    if check.improved:
        return lines
    if check.before_share >= 1.0:
        # nothing left to gain: advice to record again would not help
        lines.append(f"calibration did not make this {label} speech read more {label} (it already read as {label} "
                     "in every held-out window without calibration); the profile was still written")
        return lines
    why = (f"fewer held-out windows read as {label} with it" if check.after_share < check.before_share
           else f"as many held-out windows read as {label} with it as without")
    lines.append(f"calibration did not make this {label} speech read more {label} ({why}); the profile was still "
                 f"written, but recording more, or cleaner, {label} speech may help")
    return lines


def _check_replaceable(out: Path, *, inputs: list[str]) -> None:
    """Refuse a ``--output`` whose replacement would destroy something; checked before any work.

    The profile is written by renaming a new file over ``out``, so whatever ``out`` names
    now is gone afterwards: one of the recordings being calibrated from (also when named
    through a symbolic or hard link, or another spelling of its path), or any other file
    that is not a voice profile, is refused. An existing voice profile may be replaced:
    that is how a profile is made again.

    Raises
    ------
    ProfileError
        ``out`` is one of ``inputs`` or an existing file that is not a voice profile.
    """
    from ser_engine.errors import ProfileError
    from ser_engine.inference.profile import VoiceProfile

    try:
        target = out.stat()  # follows links: a link to an input is that input
    except OSError:  # nothing there (or a dangling link, which the rename replaces, not its target)
        return
    for f in inputs:
        try:
            same = os.path.samestat(target, os.stat(f))
        except OSError:  # a missing input is reported when it is read
            continue
        if same:
            raise ProfileError(f"{out}: is one of the input files ({f}); give --output another file name "
                               "(nothing was written)")
    if not stat.S_ISREG(target.st_mode):
        raise ProfileError(f"{out}: is not a regular file; give --output another file name (nothing was written)")
    try:
        VoiceProfile.load(out)
    except ProfileError:
        raise ProfileError(f"{out}: exists and is not a voice profile; not replaced (give --output another "
                           "file name, or remove the file first)") from None


def model_location(model_dir: str | None) -> str:
    """Say where the model came from, in words that hold no absolute path of this machine.

    Parameters
    ----------
    model_dir : str or None
        ``--model`` as given (None: the bundled model or ``$SER_MODEL_DIR``).

    Returns
    -------
    str
        A relative path as given or from the current folder, a path from ``~``, or a
        description ("the bundled model", "$SER_MODEL_DIR", "the folder given with --model").
    """
    if model_dir is None:
        return "$SER_MODEL_DIR" if os.environ.get("SER_MODEL_DIR") else "the bundled model"
    given = Path(model_dir)
    if not given.is_absolute():
        return given.as_posix()
    for base, shown in ((Path.cwd(), "."), (Path.home(), "~")):
        try:
            return (Path(shown) / given.relative_to(base)).as_posix()
        except ValueError:
            continue
    return "the folder given with --model"


def cmd_info(args: argparse.Namespace) -> int:
    """Run ``ser info``: print a readable summary of the model, or its full metadata with ``--json``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``ser info`` options.

    Returns
    -------
    int
        The exit status.
    """
    model = load_model(args.model)
    meta = model.metadata
    if args.format == "json":
        data = meta.to_dict()
        data["location"] = model_location(args.model)
        data["supports_voice_calibration"] = meta.voice_reference is not None
        data["uncertainty_threshold"] = meta.uncertainty_threshold
        # coverage and accuracy on validation at that threshold (null: not measured for this model)
        at = meta.tradeoff_at()
        data["validation_at_threshold"] = None if at is None or meta.confidence_tradeoff is None else {
            **at.to_dict(), "estimated": at.estimated, "measured_on": meta.confidence_tradeoff.measured_on}
        if model.affect_names:  # what each affect score means (model.json's "affect" says how it is computed)
            from ser_engine.files.export import affect_meaning

            data["affect_meaning"] = {k: affect_meaning(k) for k in model.affect_names}
        say(json.dumps(data, indent=2, ensure_ascii=False))
        return EXIT_OK
    for k, v in _info_rows(model, location=model_location(args.model)):
        say(f"{k:<{_INFO_WIDTH}}  {v}")
    return EXIT_OK


_INFO_WIDTH = 21


def _uar(metrics: dict[str, Any], key: str) -> str | None:
    """Format ``metrics[key]["all"]`` as "UAR 72.0 % pooled over 4784 clips"; None when not recorded."""
    block = metrics.get(key)
    allm = block.get("all") if isinstance(block, dict) else None
    if not isinstance(allm, dict) or not isinstance(allm.get("uar"), (int, float)):
        return None
    n = allm.get("n")
    return f"UAR {100 * allm['uar']:.1f} % pooled" + (f" over {n} clips" if isinstance(n, int) else "")


def _corpus_mean_uar(metrics: dict[str, Any], key: str) -> str | None:
    """Format the mean over corpora of ``metrics[key]``'s UAR with each corpus's, the figure the docs quote.

    Corpora differ in size, so the pooled UAR leans to the biggest; each unseen corpus stands for
    a new kind of voice, so they count alike. Falls back to :func:`_uar` for older metadata.
    """
    block = metrics.get(key)
    if not isinstance(block, dict) or not isinstance(block.get("mean_corpus_uar"), (int, float)):
        return _uar(metrics, key)
    per = {k: v["uar"] for k, v in block.items()
           if k not in ("all", "mean_corpus_uar") and isinstance(v, dict) and isinstance(v.get("uar"), (int, float))}
    allm = block.get("all")
    n = allm.get("n") if isinstance(allm, dict) else None
    detail = ", ".join(f"{k} {100 * u:.1f} %" for k, u in per.items())
    return (f"mean UAR {100 * block['mean_corpus_uar']:.1f} % over {len(per)} corpora ({detail}"
            + (f"; {n} clips)" if isinstance(n, int) else ")"))


def _tradeoff_rows(meta: ModelMetadata) -> list[tuple[str, str]]:
    """Rows of what the threshold costs on validation: at the model's own, then at each measured value."""
    tradeoff = meta.confidence_tradeoff
    if tradeoff is None:
        return []
    rows = []
    at = meta.tradeoff_at()
    if at is not None:
        rows.append(("  on validation", f"at {meta.uncertainty_threshold:g} it {at.describe()} "
                                        f"(measured on {tradeoff.measured_on})"))
    rows.extend((f"  at {pt.min_confidence:g}", pt.describe()) for pt in tradeoff.points)
    return rows


def _info_rows(model: EmotionModel, *, location: str) -> list[tuple[str, str]]:
    """Build the readable summary of ``ser info``: (field, text) rows."""
    meta = model.metadata
    fc = meta.feature_config
    prov, metrics = meta.provenance, meta.metrics
    onnx = model.path
    try:
        size = f"model.onnx {onnx.stat().st_size / 1024:.0f} KB"
    except OSError:
        size = "model.onnx size unknown"
    n = len(meta.labels)
    rows = [
        ("model", f"{meta.name} ({size}) in {location}"),
        ("emotions", f"{n}: {', '.join(meta.labels)} (chance UAR {1 / n:.3f})"),
        ("window", f"{fc.window_s:g} s ({fc.n_frames} frames), hop {fc.hop_s:g} s; "
                   f"log-mel {fc.n_mels} bands at {fc.sample_rate / 1000:g} kHz"),
    ]
    corpora = prov.get("corpora")
    rows.append(("trained on", ", ".join(map(str, corpora)) if isinstance(corpora, list) and corpora
                 else "not recorded"))
    held = prov.get("held_out_corpora")
    if isinstance(prov.get("held_out"), str):
        rows.append(("held out", str(prov["held_out"])))
    elif isinstance(held, dict) and held:
        parts = [f"{', '.join(map(str, v))} ({str(k).replace('unseen_', '').replace('val', 'validation')})"
                 for k, v in held.items() if isinstance(v, list) and v]
        rows.append(("held-out corpora", "; ".join(parts) or "none"))
    else:
        rows.append(("held-out corpora", "not recorded"))
    test = _uar(metrics, "test_speakers")
    unseen = _corpus_mean_uar(metrics, "unseen_corpora")
    rows.append(("test speakers", test + " (speakers of the training corpora never trained on)" if test
                 else "not recorded"))
    method = metrics.get("unseen_corpora_method")
    how = f"{method}: nearer to what new voices get" if isinstance(method, str) else \
        "corpora never trained on: nearer to what new voices get"
    rows.append(("unseen corpora", f"{unseen} ({how})" if unseen else "not recorded"))
    if meta.voice_reference is None:
        calibration = "not supported (model.json has no voice_calibration)"
    elif meta.voice_head_output is not None:
        calibration = (f"supported: with a profile, a share of {meta.voice_strength:g} of each answer comes from "
                       f"a second read-out ('{meta.voice_head_output}') that hears the window against the speaker's "
                       "centre, estimated from the profile's neutral speech; see `ser calibrate`")
    else:
        calibration = (f"supported, strength {meta.voice_strength:g} (reference: "
                       f"{meta.voice_reference_fitted_on or 'not described'}); see `ser calibrate`")
    rows.append(("voice calibration", calibration))
    if model.affect_names:
        from ser_engine.files.export import affect_meaning

        names = ", ".join(model.affect_names)
        rows.append(("affect", f"{names}: scores in [0, 1] from the model's second output "
                               "(CSV columns and JSON keys of the same names)"))
        rows.extend((f"  {k}", affect_meaning(k)) for k in model.affect_names)
    rows.append(("uncertainty threshold",
                 f"{meta.uncertainty_threshold:g} (a top probability below it is shown as 'uncertain'; "
                 "`ser analyze`/`ser listen` --min-confidence P sets another)"
                 if meta.uncertainty_threshold else "none (predictions are never marked uncertain; "
                                                    "`ser analyze`/`ser listen` --min-confidence P sets one)"))
    rows.extend(_tradeoff_rows(meta))
    try:
        import onnxruntime

        ort = str(onnxruntime.__version__)
    except ImportError:  # pragma: no cover - the model could not have loaded
        ort = "not installed"
    libs = prov.get("libraries")
    exported = libs.get("onnxruntime") if isinstance(libs, dict) else None
    rows.append(("ONNX Runtime", ort + (f" (model checked with {exported})" if exported else "")))
    date = prov.get("date")
    if isinstance(date, str) and date:
        rows.append(("trained", date))
    rows.append(("ser", f"{version()}; `ser info --json` prints the full metadata"))
    return rows

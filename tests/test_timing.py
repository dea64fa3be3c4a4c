"""One rule for the analysis window and hop: config_for and the limits every entry point shows."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from tiny_model import build_tiny_model

from ser_engine.cli.common import UsageError, window_hop
from ser_engine.cli.main import build_parser
from ser_engine.config import FeatureConfig
from ser_engine.errors import ParameterError
from ser_engine.files.analysis import analyze_file
from ser_engine.inference.model import EmotionModel
from ser_engine.live.session import LiveSession, settings_for
from ser_engine.live.stream import Streamer, StreamSettings
from ser_engine.timing import MAX_HOP_S, MAX_WINDOW_S, MIN_HOP_S, MIN_WINDOW_S, config_for, fixed_window_s


def test_defaults_are_the_models_window_and_hop(tiny_model: EmotionModel) -> None:
    fc = tiny_model.feature_config
    cfg = config_for(tiny_model)
    assert (cfg.window_s, cfg.hop_s) == (fc.window_s, fc.hop_s)
    assert cfg == fc
    # a window shorter than the model's hop takes the window as its hop, wherever it is asked for
    short = config_for(tiny_model, window_s=MIN_WINDOW_S)
    assert short.hop_s == min(fc.hop_s, MIN_WINDOW_S)
    args = argparse.Namespace(window=MIN_WINDOW_S, hop=None)
    assert window_hop(args, tiny_model) == (short.window_s, short.hop_s)
    live = settings_for(tiny_model)
    assert (live.window_s, live.hop_s) == (fc.window_s, fc.hop_s)
    assert fixed_window_s(tiny_model) is None


@pytest.mark.parametrize(("window_s", "hop_s"), [(MIN_WINDOW_S, MIN_HOP_S), (MAX_WINDOW_S, MAX_HOP_S), (1.0, 1.0)])
def test_the_limits_are_accepted_everywhere(tiny_model: EmotionModel, window_s: float, hop_s: float) -> None:
    cfg = config_for(tiny_model, window_s=window_s, hop_s=hop_s)
    assert (cfg.window_s, cfg.hop_s) == (window_s, hop_s)
    settings = StreamSettings(window_s=window_s, hop_s=hop_s)
    assert Streamer(tiny_model, settings=settings).config == cfg
    args = build_parser().parse_args(["analyze", "x.wav", "--window", str(window_s), "--hop", str(hop_s)])
    assert window_hop(args, tiny_model) == (window_s, hop_s)


@pytest.mark.parametrize(
    ("window_s", "hop_s", "message"),
    [
        (MIN_WINDOW_S - 0.01, 0.1, "window_s must be between 0.5 and 10 s"),
        (MAX_WINDOW_S + 0.01, 1.0, "window_s must be between 0.5 and 10 s"),
        (3.0, MIN_HOP_S - 0.001, "hop_s must be between 0.05 and 5 s"),
        (MAX_WINDOW_S, MAX_HOP_S + 0.01, "hop_s must be between 0.05 and 5 s"),
        (1.0, 1.5, "hop_s must not be longer than the window (1 s)"),
        (float("nan"), 0.5, "window_s must be a finite number"),
    ],
)
def test_outside_the_limits_is_refused_alike(tiny_model: EmotionModel, tmp_path: Path, window_s: float,
                                            hop_s: float, message: str) -> None:
    pattern = re.escape(message)
    with pytest.raises(ParameterError, match=pattern):
        config_for(tiny_model, window_s=window_s, hop_s=hop_s)
    with pytest.raises(ParameterError, match=pattern):
        StreamSettings(window_s=window_s, hop_s=hop_s)
    with pytest.raises(ParameterError, match=pattern):
        analyze_file(tmp_path / "never-read.wav", tiny_model, window_s=window_s, hop_s=hop_s)
    with pytest.raises(ParameterError, match=pattern):
        LiveSession(tiny_model).update_settings(_unchecked(window_s, hop_s))


def _unchecked(window_s: float, hop_s: float) -> StreamSettings:
    """Make settings past StreamSettings' own check, as a caller bypassing it would (the session checks again)."""
    s = StreamSettings()
    object.__setattr__(s, "window_s", window_s)
    object.__setattr__(s, "hop_s", hop_s)
    return s


def test_the_cli_parser_refuses_what_the_engine_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for option, good, bad in (("--window", (MIN_WINDOW_S, MAX_WINDOW_S), (MIN_WINDOW_S - 0.01, MAX_WINDOW_S + 0.01)),
                              ("--hop", (MIN_HOP_S, MAX_HOP_S), (MIN_HOP_S - 0.001, MAX_HOP_S + 0.01))):
        for value in good:
            parser.parse_args(["analyze", "x.wav", option, str(value)])
        for value in bad:
            with pytest.raises(SystemExit):
                parser.parse_args(["analyze", "x.wav", option, str(value)])
    capsys.readouterr()
    for command in ("analyze", "listen"):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        shown = " ".join(capsys.readouterr().out.split())
        assert f"analysis window in seconds, {MIN_WINDOW_S:g}-{MAX_WINDOW_S:g}" in shown
        assert f"seconds between windows, {MIN_HOP_S:g}-{MAX_HOP_S:g} and at most the window" in shown


def test_a_fixed_length_model_takes_only_its_window(tmp_path: Path) -> None:
    model = EmotionModel.load(build_tiny_model(tmp_path / "fixed", fixed_frames=True))
    assert fixed_window_s(model) == model.feature_config.window_s == 3.0
    assert config_for(model, hop_s=0.25).n_frames == 297
    calls = (lambda: config_for(model, window_s=2.0), lambda: Streamer(model, settings=StreamSettings(window_s=2.0)),
             lambda: LiveSession(model).update_settings(StreamSettings(window_s=2.0)))
    for call in calls:
        with pytest.raises(ParameterError, match=r"needs 3 s windows \(297 frames\); a 2 s window gives 197"):
            call()
    with pytest.raises(UsageError, match="this model needs 3 s windows"):
        window_hop(argparse.Namespace(window=2.0, hop=None), model)


def test_feature_config_alone_does_not_apply_the_limits() -> None:
    """Training may cut other windows; the limits are for what users ask of a model."""
    assert FeatureConfig(window_s=0.1, hop_s=0.01).window_s == 0.1


@pytest.mark.gui
def test_the_settings_dialog_offers_exactly_the_limits(qtbot, tmp_path: Path) -> None:
    from desktop_support import temp_settings

    from desktop_app.settings_dialog import SettingsDialog

    dlg = SettingsDialog(temp_settings(tmp_path))
    qtbot.addWidget(dlg)
    assert (dlg.window_s.minimum(), dlg.window_s.maximum()) == (MIN_WINDOW_S, MAX_WINDOW_S)
    assert (dlg.hop_s.minimum(), dlg.hop_s.maximum()) == (MIN_HOP_S, MAX_HOP_S)
    # every pair the spin boxes allow with hop <= window is one StreamSettings accepts
    for window, hop in ((MIN_WINDOW_S, MIN_HOP_S), (MAX_WINDOW_S, MAX_HOP_S), (MIN_WINDOW_S, MIN_WINDOW_S)):
        dlg.window_s.setValue(window)
        dlg.hop_s.setValue(hop)
        assert (dlg.values().window_s, dlg.values().hop_s) == (window, hop)
    dlg.window_s.setValue(1.0)
    dlg.hop_s.setValue(2.0)
    with pytest.raises(ParameterError, match="hop_s must not be longer than the window"):
        dlg.values()

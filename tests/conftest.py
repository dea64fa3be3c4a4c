"""Shared fixtures. Module-specific fixtures live in their own test modules."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/tiny_model.py

from tiny_model import build_tiny_model  # noqa: E402

from ser_engine.model import EmotionModel  # noqa: E402

CORPUS_DIR = Path(os.environ.get("SER_CORPUS_DIR", ROOT.parent / "shared" / "data" / "ser"))
SHIPPED_MODEL_DIR = ROOT / "models"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared corpora. Missing corpora are an error, not a skip."""
    if not (CORPUS_DIR / "README.md").is_file():
        pytest.fail(f"corpus folder {CORPUS_DIR} not found (set SER_CORPUS_DIR)")
    return CORPUS_DIR


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny ONNX model with dynamic time axis."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path) -> EmotionModel:
    return EmotionModel.load(tiny_model_dir)


@pytest.fixture(scope="session")
def shipped_model_dir() -> Path:
    """The real model shipped in models/. Its absence is a failure."""
    if not (SHIPPED_MODEL_DIR / "model.onnx").is_file():
        pytest.fail(f"the shipped model {SHIPPED_MODEL_DIR / 'model.onnx'} is missing")
    return SHIPPED_MODEL_DIR


@pytest.fixture(scope="session")
def shipped_model(shipped_model_dir: Path) -> EmotionModel:
    return EmotionModel.load(shipped_model_dir)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def synth_speechlike(*, seconds: float, sample_rate: int = 16000, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """Voiced, syllable-modulated harmonic signal (float32, mono); not corpus audio."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t) + rng.normal(0, 1, n).cumsum() / n * 20
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    sig = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 0.5
    y = sig * envelope + rng.normal(0, 0.01, n)
    y = y / (np.abs(y).max() + 1e-9) * level
    return y.astype(np.float32)

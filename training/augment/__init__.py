"""Waveform augmentation for training audio only (applied after the split).

One transform per module, each a small frozen dataclass whose ``__call__``
takes ``y`` (float32 mono, shape ``(n,)``), ``sample_rate`` and an explicit
``numpy.random.Generator``, and returns a new float32 array (never modifying
its input). :class:`~training.augment.compose.Compose` chains them with
per-transform probabilities; :func:`default_chain` is the chain the shipped
model was trained with.
"""

from training.augment.bandlimit import BandLimit
from training.augment.base import Transform
from training.augment.compose import Compose, OneOf, default_chain
from training.augment.gain import Gain
from training.augment.noise import AddNoise
from training.augment.pitch import PitchShift
from training.augment.reverb import Reverb
from training.augment.shift import TimeShift
from training.augment.speed import SpeedChange
from training.augment.stretch import TimeStretch

__all__ = [
    "AddNoise",
    "BandLimit",
    "Compose",
    "Gain",
    "OneOf",
    "PitchShift",
    "Reverb",
    "SpeedChange",
    "TimeShift",
    "TimeStretch",
    "Transform",
    "default_chain",
]

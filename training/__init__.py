"""Training pipeline for ``ser``.

Corpora, speaker-disjoint splits, features, augmentation, models, evaluation
and ONNX export.

This is the only package of the project that imports TensorFlow, and it does so
lazily (inside the functions that need it) so that importing ``training`` or its
data modules stays light.
"""

__all__: list[str] = []

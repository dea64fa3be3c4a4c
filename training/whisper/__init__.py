"""The pretrained Whisper-base audio encoder: weights, Keras encoder and ONNX embedder.

Import the submodules (:mod:`~training.whisper.weights`, :mod:`~training.whisper.ct2`,
:mod:`~training.whisper.encoder`, :mod:`~training.whisper.embedder`); only ``encoder`` and
``embedder`` import Keras/TensorFlow.
"""

"""The emotion model on the pretrained Whisper-base encoder (``ser-train encoder``).

``embed``: per-window block means of the int8 embedder for every corpus clip, cached on disk;
``head``: scikit-learn read-outs of those vectors (7 emotions, arousal and valence), chosen on
validation only; ``build``: the shipped ONNX graph (embedder of the first blocks + the head) and
its ``model.json``; ``report``: the evaluation on test speakers and unseen corpora beside the old
CNN; ``run``: the whole run. Importing the package imports nothing heavy.
"""

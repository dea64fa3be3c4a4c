"""The seed projects reproduced under our protocol (``ser-train seeds``); not part of the shipped pipeline.

The five projects the repository started from, rebuilt so that their results can be set beside
ours on the same speakers and corpora:

:mod:`training.seeds.leak`
    The three split protocols of the leak table (random, augment-before-split,
    speaker-independent) over a corpus's clip list.
:mod:`training.seeds.systems`
    The seeds' models (decision tree, k-NN, 1D CNN, CNN + BiLSTM and its random
    search), fitted with early stopping on a validation part.
:mod:`training.seeds.data`
    The seeds' feature sets on corpus items, through the engine's one audio path.
:mod:`training.seeds.run`
    The budgeted plan of ``ser-train seeds`` and its run (``results_seeds.json``).

Nothing is imported here: TensorFlow and scikit-learn stay out until a function needs them.
"""

__all__: list[str] = []

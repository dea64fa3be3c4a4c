"""Signal processing: decoding, resampling, the one featurizer, speech gate, smoothing and the window core."""

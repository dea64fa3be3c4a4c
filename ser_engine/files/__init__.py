"""File analysis: finding audio files, analysing them window by window, writing results."""

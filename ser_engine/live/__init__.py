"""Live audio: inputs filling a ring buffer, the streamer, the live session and its recorder."""

"""The model: ONNX Runtime session, its metadata, and voice profiles that adapt it to one voice."""

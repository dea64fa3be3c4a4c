#!/bin/sh
# Launcher for the ser desktop app (Debian package): the bundle lives in /opt/ser.
# No network: ONNX Runtime telemetry off before it loads (the bundle sets it too).
: "${ORT_DISABLE_TELEMETRY:=1}"
export ORT_DISABLE_TELEMETRY
exec /opt/ser/ser-app "$@"

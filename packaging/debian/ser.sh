#!/bin/sh
# Launcher for the ser command line (Debian package): `ser analyze FILE...`, `ser listen`, ...
# No network: ONNX Runtime telemetry off before it loads (the bundle sets it too).
: "${ORT_DISABLE_TELEMETRY:=1}"
export ORT_DISABLE_TELEMETRY
exec /opt/ser/ser-app ser "$@"

#!/bin/sh
# Launcher for the ser desktop app (Debian package): the bundle lives in /opt/ser.
exec /opt/ser/ser-app "$@"

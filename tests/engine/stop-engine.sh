#!/usr/bin/env bash
# Stop the dockerd started by start-engine.sh (only that one: found through its pid file).
# Containers keep their state on disk under the data root; images are kept for the next start.
set -euo pipefail

RUN_ROOT="${AGENCYSTACK_TEST_RUN_ROOT:-/run/agencystack-test}"
PIDFILE="$RUN_ROOT/pid"

if [[ ! -f "$PIDFILE" ]]; then
  echo "stop-engine: no pid file at $PIDFILE; nothing to stop" >&2
  exit 0
fi
pid="$(cat "$PIDFILE")"
if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
  echo "stop-engine: dockerd (pid ${pid:-?}) is not running" >&2
  rm -f "$PIDFILE"
  exit 0
fi
echo "stop-engine: stopping dockerd pid $pid" >&2
kill -TERM "$pid"
for _ in $(seq 1 150); do   # up to 30 s: dockerd stops its containers first
  kill -0 "$pid" 2>/dev/null || { echo "stop-engine: stopped" >&2; exit 0; }
  sleep 0.2
done
echo "stop-engine: dockerd pid $pid still alive after 30 s; sending SIGKILL" >&2
kill -KILL "$pid" 2>/dev/null || true
rm -f "$PIDFILE" "$RUN_ROOT/docker.sock"

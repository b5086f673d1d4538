#!/usr/bin/env bash
# Start (idempotently) the real Docker engine used by AgencyStack's engine tests.
#
# - If $DOCKER_HOST (default unix:///run/agencystack-test/docker.sock) already answers, do nothing.
# - Otherwise start Debian's dockerd with vfs storage and no iptables/bridge (see
#   shared/reference/real-docker-here.md), wait until `docker version` answers (60 s), and print
#   the `export DOCKER_HOST=...` line to eval.
#
# Usage:  eval "$(bash tests/engine/start-engine.sh)"   # stdout carries only the export line
# Env:    DOCKER_HOST, AGENCYSTACK_TEST_DATA_ROOT (default /var/lib/agencystack-test),
#         AGENCYSTACK_TEST_RUN_ROOT (default /run/agencystack-test),
#         AGENCYSTACK_TEST_DOCKERD_LOG (default /var/log/agencystack-test-dockerd.log),
#         AGENCYSTACK_TEST_DOCKERD_ARGS (extra dockerd arguments, word-split; e.g. a second engine beside the
#         first needs its own --default-address-pool so that the two do not hand out the same subnets). Unset:
#         one pool of 256 /24 networks (10.224.0.0/16): dockerd's defaults hold 31 networks, fewer than the
#         tests' and bench/bulk.py's clients need at once (each client's stack has its own networks).
set -euo pipefail

RUN_ROOT="${AGENCYSTACK_TEST_RUN_ROOT:-/run/agencystack-test}"
DATA_ROOT="${AGENCYSTACK_TEST_DATA_ROOT:-/var/lib/agencystack-test}"
LOG="${AGENCYSTACK_TEST_DOCKERD_LOG:-/var/log/agencystack-test-dockerd.log}"
SOCK="$RUN_ROOT/docker.sock"
PIDFILE="$RUN_ROOT/pid"
DEFAULT_HOST="unix://$SOCK"
export DOCKER_HOST="${DOCKER_HOST:-$DEFAULT_HOST}"

log() { echo "start-engine: $*" >&2; }

answers() { timeout 10 docker version >/dev/null 2>&1; }

for bin in docker dockerd; do
  if ! command -v "$bin" >/dev/null 2>&1; then
    log "'$bin' not found; install Debian's docker.io (apt-get install -y docker.io)"
    exit 1
  fi
done

if answers; then
  log "engine at $DOCKER_HOST already answers"
  echo "export DOCKER_HOST=$DOCKER_HOST"
  exit 0
fi

if [[ "$DOCKER_HOST" != "$DEFAULT_HOST" ]]; then
  log "DOCKER_HOST=$DOCKER_HOST does not answer; starting our own engine at $DEFAULT_HOST instead"
  export DOCKER_HOST="$DEFAULT_HOST"
  if answers; then
    echo "export DOCKER_HOST=$DOCKER_HOST"
    exit 0
  fi
fi

mkdir -p "$RUN_ROOT/exec" "$DATA_ROOT/data" "$(dirname "$LOG")"

# A stale dockerd of ours (pid file present, process alive, socket dead): stop it first.
if [[ -f "$PIDFILE" ]]; then
  oldpid="$(cat "$PIDFILE" 2>/dev/null || true)"
  if [[ -n "$oldpid" ]] && kill -0 "$oldpid" 2>/dev/null; then
    log "stale dockerd pid $oldpid does not answer; stopping it"
    kill "$oldpid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$oldpid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$oldpid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
fi
rm -f "$SOCK"

log "starting dockerd (log: $LOG)"
# setsid + nohup: the daemon must outlive this script and the CI step that ran it.
setsid nohup dockerd \
  --storage-driver=vfs \
  --iptables=false --ip6tables=false --bridge=none \
  --data-root "$DATA_ROOT/data" \
  --exec-root "$RUN_ROOT/exec" \
  -H "$DEFAULT_HOST" \
  --pidfile "$PIDFILE" \
  ${AGENCYSTACK_TEST_DOCKERD_ARGS:---default-address-pool base=10.224.0.0/16,size=24} \
  >>"$LOG" 2>&1 </dev/null &
daemon_pid=$!

deadline=$((SECONDS + 60))
until answers; do
  if ! kill -0 "$daemon_pid" 2>/dev/null; then
    log "dockerd exited early; last log lines:"
    tail -n 40 "$LOG" >&2 || true
    exit 1
  fi
  if (( SECONDS >= deadline )); then
    log "dockerd did not answer within 60 s; last log lines:"
    tail -n 40 "$LOG" >&2 || true
    exit 1
  fi
  sleep 0.5
done

log "engine ready at $DOCKER_HOST (pid $daemon_pid)"
echo "export DOCKER_HOST=$DOCKER_HOST"

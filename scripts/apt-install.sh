#!/usr/bin/env bash
# Install the named Debian packages that are not installed yet (apt-get update first), as root or through sudo.
# Prints nothing on stdout (callers eval other scripts' stdout); apt's output goes to stderr.
#
# Usage:  bash scripts/apt-install.sh docker.io mmdebstrap busybox-static
set -euo pipefail

log() { echo "apt-install: $*" >&2; }

missing=()
for pkg in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$pkg")
  fi
done
((${#missing[@]})) || exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  log "missing ${missing[*]} and this host has no apt-get: install them with its package manager"
  exit 1
fi
if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
  log "installing ${missing[*]} through sudo"
else
  log "missing ${missing[*]}: run as root: apt-get update && apt-get install -y ${missing[*]}"
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log "apt-get install ${missing[*]}"
"${as_root[@]}" apt-get update -q >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2

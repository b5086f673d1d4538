#!/usr/bin/env bash
# `make install`: the core and the component distributions (editable) with the test tools, in the project's own
# virtualenv. Debian 12's and Ubuntu 24.04's python3 are "externally managed" (PEP 668): pip refuses to install
# into them, and --break-system-packages is never the answer. So:
#
# - PYTHON unset or $VENV/bin/python (the default): make $VENV from BASE_PYTHON (default python3) if it has no
#   working pip -- installing python3-venv through apt (as root, or through sudo) only where venv's pip bootstrap
#   (ensurepip) is missing -- install into it, and link $BINDIR/agencystack to $VENV/bin/agencystack (BINDIR:
#   /usr/local/bin as root, ~/.local/bin otherwise; BINDIR= empty links nothing).
# - PYTHON=another interpreter (CI-style, or a virtualenv of your own): install into that one as before; an
#   externally managed interpreter is refused with the way out instead of pip's wall of text.
#
# Env: PYTHON, VENV (default <repo>/.venv), BASE_PYTHON (default python3), BINDIR.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV="${VENV:-$PWD/.venv}"
PYTHON="${PYTHON:-$VENV/bin/python}"
BASE_PYTHON="${BASE_PYTHON:-python3}"
if [[ -z ${BINDIR+set} ]]; then
  if [[ $(id -u) -eq 0 ]]; then BINDIR=/usr/local/bin; else BINDIR="$HOME/.local/bin"; fi
fi

log() { echo "install: $*" >&2; }
die() { log "$*"; exit 1; }

# True when $1 is an interpreter pip refuses to install into (PEP 668 marker, and not a virtualenv).
externally_managed() {
  "$1" -c 'import os, sys, sysconfig
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(0 if sys.prefix == sys.base_prefix and os.path.exists(marker) else 1)' 2>/dev/null
}

ensure_venv() {
  if [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    return
  fi
  if [[ -e $VENV ]]; then
    log "$VENV has no working pip (a venv made without python3-venv?): making it again"
    rm -rf "$VENV"
  fi
  command -v "$BASE_PYTHON" >/dev/null 2>&1 \
    || die "no '$BASE_PYTHON' found: apt-get install -y python3 (or BASE_PYTHON=/path/to/python3.11+)"
  "$BASE_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$BASE_PYTHON is $("$BASE_PYTHON" -V 2>&1); AgencyStack needs Python 3.11+ (BASE_PYTHON=...)"
  if ! "$BASE_PYTHON" -c 'import ensurepip' >/dev/null 2>&1; then
    # Debian and Ubuntu ship venv's pip bootstrap separately: python3-venv (python3.X-venv for another version).
    local base pkg
    base="$(readlink -f "$(command -v "$BASE_PYTHON")")"
    if [[ $base == "$(readlink -f /usr/bin/python3 2>/dev/null)" ]]; then
      pkg=python3-venv
    else
      pkg="python$("$BASE_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
    fi
    log "$BASE_PYTHON cannot make a virtualenv with pip (ensurepip missing): installing $pkg"
    bash scripts/apt-install.sh "$pkg"
  fi
  log "making the project virtualenv $VENV from $("$BASE_PYTHON" -c 'import sys; print(sys.executable)') ($("$BASE_PYTHON" -V 2>&1))"
  if ! "$BASE_PYTHON" -m venv "$VENV"; then
    rm -rf "$VENV"
    die "could not make $VENV with $BASE_PYTHON (see above); nothing was installed"
  fi
}

link_cli() {
  local target="$VENV/bin/agencystack" link="$BINDIR/agencystack"
  mkdir -p "$BINDIR"
  if [[ -e $link && ! -L $link ]]; then
    log "$link exists and is not a link: left alone (run $target, or remove $link and run make install again)"
    return
  fi
  ln -sfn "$target" "$link"
  log "agencystack: $link -> $target"
  case ":$PATH:" in
    *":$BINDIR:"*) ;;
    *) log "$BINDIR is not on this shell's PATH: export PATH=\"$BINDIR:\$PATH\" (Debian's ~/.profile adds ~/.local/bin at the next login once it exists)" ;;
  esac
}

in_venv=false
if [[ $(realpath -m "$(dirname "$PYTHON")") == "$(realpath -m "$VENV/bin")" ]]; then
  in_venv=true
  ensure_venv
elif externally_managed "$PYTHON"; then
  log "$PYTHON is externally managed (PEP 668): pip may not install into it, and --break-system-packages is"
  die "not the answer. Run plain 'make install' (it makes and uses $VENV), or PYTHON=<a virtualenv's python>"
fi

log "installing agencystack, agencystack-posthog, agencystack-keycloak (editable) into $PYTHON"
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e '.[test]' -e components/posthog -e components/keycloak -e components/dashboard
"$PYTHON" -m compileall -q agencystack components  # editable installs are not byte-compiled: keep starts fast
if $in_venv && [[ -n $BINDIR ]]; then
  link_cli
fi

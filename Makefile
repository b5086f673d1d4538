# AgencyStack. `make install` then `make test`; `make posthog` installs PostHog for CLIENT_ID on this host.
# Everything runs in the project's virtualenv .venv, made from BASE_PYTHON (Debian's and Ubuntu's python3 are
# externally managed, PEP 668: pip may not install into them). `make install` links agencystack into BINDIR
# (/usr/local/bin as root, ~/.local/bin otherwise; BINDIR= links nothing). PYTHON=/some/python installs into and
# tests with that interpreter instead (CI-style; a virtualenv of your own). See scripts/install.sh.
VENV ?= $(CURDIR)/.venv
BASE_PYTHON ?= python3
PYTHON ?= $(VENV)/bin/python
IN_VENV := $(filter $(abspath $(VENV)/bin/python),$(abspath $(PYTHON)))
CLIENT_ID ?= default
export CLIENT_ID
ifdef DOMAIN
export DOMAIN
endif
AGENCYSTACK ?= $(if $(IN_VENV),$(VENV)/bin/agencystack,agencystack)

.PHONY: install test lint bench images images-author engine posthog posthog-status posthog-logs posthog-restart posthog-backup \
	keycloak keycloak-status demo-core

install:  ## .venv (python3-venv from apt if missing) with the core + both component distributions, editable, test tools
	@PYTHON="$(PYTHON)" VENV="$(VENV)" BASE_PYTHON="$(BASE_PYTHON)" bash scripts/install.sh

test:  ## the whole suite in the same environment (engine tests skip without an engine, and fail under CI=true)
	@command -v "$(PYTHON)" >/dev/null || { echo "make test: no $(PYTHON): run 'make install' first" >&2; exit 2; }
	$(if $(IN_VENV),PATH="$(VENV)/bin:$$PATH" )$(PYTHON) -m pytest

bench:  ## benchmarks against their peers; each prints its figures and one JSON line
	$(PYTHON) bench/cli_startup.py
	$(PYTHON) bench/engine.py
	$(PYTHON) bench/backup.py
	$(PYTHON) bench/sso.py

engine:  ## install Debian's docker.io if missing, start the local test engine (real dockerd, vfs), print its DOCKER_HOST
	@bash scripts/apt-install.sh docker.io
	@bash tests/engine/start-engine.sh

images:  ## build the local test images (no registry needed; mmdebstrap and busybox-static from apt if missing)
	@bash scripts/apt-install.sh mmdebstrap busybox-static
	$(PYTHON) tests/images/build.py

images-author:  ## only what a component's own tests need (busybox, Postgres, Traefik): no Maven, no Go; cold 151 s at load 11-16
	@bash scripts/apt-install.sh mmdebstrap busybox-static
	$(PYTHON) tests/images/build.py busybox postgres traefik

posthog:
	$(AGENCYSTACK) install posthog
posthog-status:
	$(AGENCYSTACK) status posthog
posthog-logs:
	$(AGENCYSTACK) logs posthog
posthog-restart:
	$(AGENCYSTACK) restart posthog
posthog-backup:
	$(AGENCYSTACK) backup posthog

keycloak:
	$(AGENCYSTACK) install keycloak
keycloak-status:
	$(AGENCYSTACK) status keycloak

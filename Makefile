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

.PHONY: install test lint bench images images-author engine help

install:  ## .venv (python3-venv from apt if missing) with the core + the component distributions, editable, test tools
	@PYTHON="$(PYTHON)" VENV="$(VENV)" BASE_PYTHON="$(BASE_PYTHON)" bash scripts/install.sh

test:  ## the whole suite in the same environment (engine tests skip without an engine, and fail under CI=true)
	@command -v "$(PYTHON)" >/dev/null || { echo "make test: no $(PYTHON): run 'make install' first" >&2; exit 2; }
	$(if $(IN_VENV),PATH="$(VENV)/bin:$$PATH" )$(PYTHON) -m pytest

bench:  ## every benchmark against its peer, in one run: each prints its figures, then one table and one JSON line for all
	$(PYTHON) bench/all.py

engine:  ## install Debian's docker.io if missing, start the local test engine (real dockerd, vfs), print its DOCKER_HOST
	@bash scripts/apt-install.sh docker.io
	@bash tests/engine/start-engine.sh

images:  ## build the local test images (no registry needed; mmdebstrap and busybox-static from apt if missing)
	@bash scripts/apt-install.sh mmdebstrap busybox-static
	$(PYTHON) tests/images/build.py

images-author:  ## only what a component's own tests need (busybox, Postgres, Traefik): no Maven, no Go; cold 151 s at load 11-16
	@bash scripts/apt-install.sh mmdebstrap busybox-static
	$(PYTHON) tests/images/build.py busybox postgres traefik

# Targets of every installed component distribution and bundle, made from what the plugins provide (asked only
# when a goal is not one of the fixed targets above): make <c> | <c>-status | <c>-logs | <c>-restart | <c>-backup,
# make <bundle> (demo-core); CLIENT_ID and DOMAIN reach agencystack through the environment.
FIXED_GOALS := install test lint bench images images-author engine
ifneq ($(filter-out $(FIXED_GOALS),$(or $(MAKECMDGOALS),help)),)
PLUGIN_NAMES := $(shell $(PYTHON) -c "from agencystack.plugins import load; p = load(); print(' '.join(sorted(p.components)) + ' :' + ' '.join(p.bundles()))" 2>/dev/null)
COMPONENTS := $(shell printf '%s\n' "$(PLUGIN_NAMES)" | cut -d: -f1)
BUNDLES := $(shell printf '%s\n' "$(PLUGIN_NAMES)" | cut -s -d: -f2)
endif
ACTIONS := status logs restart backup

define component_targets
.PHONY: $(1) $(foreach a,$(ACTIONS),$(1)-$(a))
$(1):  ## install $(1) for CLIENT_ID (DOMAIN)
	$$(AGENCYSTACK) install $(1)
$(foreach a,$(ACTIONS),$(1)-$(a):  ## $(a) $(1) for CLIENT_ID
	$$(AGENCYSTACK) $(a) $(1)
)
endef
$(foreach c,$(COMPONENTS),$(eval $(call component_targets,$(c))))

define bundle_target
.PHONY: $(1)
$(1):  ## install the bundle $(1) for CLIENT_ID (DOMAIN): agencystack install $(1)
	$$(AGENCYSTACK) install $(1)
endef
$(foreach b,$(BUNDLES),$(eval $(call bundle_target,$(b))))

help:  ## this list: fixed targets, then every installed component's and bundle's
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18
	@for c in $(COMPONENTS); do printf '%-18s%s\n' "$$c" "install $$c for CLIENT_ID (DOMAIN); also $$c-status $$c-logs $$c-restart $$c-backup"; done
	@for b in $(BUNDLES); do printf '%-18s%s\n' "$$b" "install the bundle $$b for CLIENT_ID (DOMAIN)"; done

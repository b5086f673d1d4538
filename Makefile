# AgencyStack. `make install` then `make test`; `make posthog` installs PostHog for CLIENT_ID on this host.
PYTHON ?= python3
CLIENT_ID ?= default
export CLIENT_ID
ifdef DOMAIN
export DOMAIN
endif
AGENCYSTACK ?= agencystack

.PHONY: install test lint bench images engine posthog posthog-status posthog-logs posthog-restart posthog-backup \
	keycloak keycloak-status demo-core

install:  ## core + both component distributions, editable, with test tools
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[test]' -e components/posthog -e components/keycloak
	$(PYTHON) -m compileall -q agencystack components  # editable installs are not byte-compiled: keep starts fast

test:  ## the whole suite (engine tests skip without an engine, and fail under CI=true)
	$(PYTHON) -m pytest

bench:  ## benchmarks against their peers; each prints its figures and one JSON line
	$(PYTHON) bench/cli_startup.py
	$(PYTHON) bench/engine.py
	$(PYTHON) bench/sso.py

engine:  ## start the local test engine (real dockerd, vfs) and print its DOCKER_HOST
	bash tests/engine/start-engine.sh

images:  ## build the local test images (no registry needed)
	$(PYTHON) tests/images/build.py

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

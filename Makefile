# portside: two commands for a newcomer on Debian 12 (as root):
#   make run   - install what is missing, then open the app
#   make test  - install what is missing, then run every test
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
DEBS := runc crun conmon busybox-static skopeo umoci docker-registry tmux \
        zstd iproute2 nftables psmisc gcc libc6-dev
PYTEST_ARGS ?=

.PHONY: setup run test unit integration screenshots bench clean

setup: .setup-stamp-debs $(VENV)/.installed

# Only calls apt when a package is missing, so a second run takes seconds.
.setup-stamp-debs: Makefile
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@touch $@

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

run: setup
	@$(VENV)/bin/portside images -q | grep -q . || $(VENV)/bin/portside image bootstrap busybox
	$(VENV)/bin/portside

test: setup
	$(PY) -m pytest -ra -n 2 $(PYTEST_ARGS)

unit: setup
	$(PY) -m pytest -ra -m 'not integration' $(PYTEST_ARGS)

integration: setup
	$(PY) -m pytest -ra -m integration $(PYTEST_ARGS)

screenshots: setup
	$(PY) scripts/screenshots.py

bench: setup
	$(PY) bench/load_image.py

clean:
	rm -rf $(VENV) .setup-stamp-debs

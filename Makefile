# portside: two commands for a newcomer on Debian 12 (as root):
#   make run   - install what is missing, then open the app
#   make test  - install what is missing, then run every test
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
DEBS := runc crun conmon busybox-static skopeo umoci docker-registry tmux \
        zstd iproute2 nftables psmisc gcc libc6-dev librsvg2-bin
PYTEST_ARGS ?=
# Extra arguments for every bench script, e.g. BENCH_ARGS=--help; or run one:
# `make bench BENCHES=bench/load_image.py`.
BENCH_ARGS ?=
BENCHES ?= $(wildcard bench/*.py)
TOOLONG_VENV := .venv-toolong
BENCH_DEBS := podman

.PHONY: setup debs bytecode run test unit integration screenshots bench clean

setup: debs $(VENV)/.installed bytecode

# Python reads .pyc files even where PYTHONDONTWRITEBYTECODE is set (as on
# these machines), but never writes them: without this every `portside`
# command would compile the whole source tree again (~100 ms). Incremental.
bytecode: $(VENV)/.installed
	@$(PY) -m compileall -q -j 0 engine tui

# Runs every time (a package removed later is put back), but asks dpkg once
# for all of them and calls apt only when one is missing: a no-op in well
# under a second on a set-up machine.
define install_debs
	@missing=$$(dpkg-query -W -f='$${Package} $${db:Status-Abbrev}\n' $(1) 2>/dev/null \
	  | awk '$$2 == "ii" {print $$1}' | sort -u | comm -13 - <(printf '%s\n' $(1) | sort -u)); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
endef

debs:
	$(call install_debs,$(DEBS))

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

# Toolong (tui_bench's comparison) pins a Textual far older than the app's,
# so it gets a venv of its own instead of an extra in the project's.
$(TOOLONG_VENV)/bin/tl:
	python3 -m venv $(TOOLONG_VENV)
	$(TOOLONG_VENV)/bin/pip install -q toolong

bench: setup $(TOOLONG_VENV)/bin/tl
	$(call install_debs,$(BENCH_DEBS))
	@set -e; for b in $(BENCHES); do \
	  echo "== $$b"; TOOLONG=$(CURDIR)/$(TOOLONG_VENV)/bin/tl $(PY) $$b $(BENCH_ARGS); \
	done

clean:
	rm -rf $(VENV) $(TOOLONG_VENV) .setup-stamp-debs

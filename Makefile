# bootstorm: two commands do all the set-up on a fresh Debian machine (as root).
#   make run   - the main job
#   make test  - lint, type-check and the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := qemu-system-x86 nasm chromium

.PHONY: run test lint deps system-deps guest clean

run: deps
	$(VENV)/bin/sim run scenarios/queueing.yaml --out runs/queueing
	$(VENV)/bin/measure info
	$(VENV)/bin/measure burst --count 20 --interval-ms 5 --boot firmware --repeat 1 --out runs/readme-burst
	$(VENV)/bin/measure plot runs/readme-burst --out runs/readme-burst/plots

test: deps
	$(VENV)/bin/ruff check sim measure tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q

lint: deps
	$(VENV)/bin/ruff check sim measure tests benchmarks
	$(VENV)/bin/mypy

deps: system-deps $(STAMP)

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing" >&2; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >&2; \
	fi

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

guest:
	$(MAKE) -C guest

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

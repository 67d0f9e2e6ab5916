# Batch Normalization, executable.  Two commands for readers: `make book`, `make test`.
# Both bootstrap .venv from the exact pins in requirements.txt on a machine with Python 3.11.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JB_FLAGS ?= -W -n --keep-going
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
NOTEBOOKS := $(sort $(wildcard book/*.ipynb))
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: book test unit stale nbval html browser lint bench reproduce execute clean chromium data datacheck

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

## Build the HTML book from the notebooks' stored outputs into _build/html.
book: $(STAMP)
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo "Open _build/html/index.html"

## The whole test pyramid: lint, the datasets' presence, unit/property/data/smoke tests, nbval over book/, strict
## book build, browser check.
test: lint stale datacheck unit nbval html browser
	@echo "make test: all stages passed"

## Download MNIST and CIFAR-10 (about 180 MB, checksummed) into ~/.cache/bnlib, where bnlib looks for them.
data: $(STAMP)
	$(BIN)/python -m bnlib.data download

## MNIST and CIFAR-10 present (in $$BNLIB_DATA_DIR or ~/.cache/bnlib) and matching their published checksums,
## else one sentence saying what is missing and how to get it (`make data`), and the tests stop here.
datacheck: $(STAMP)
	@$(BIN)/python -m bnlib.data check

## Every committed result must match its registered config and the current engine fingerprint.
stale: $(STAMP)
	$(BIN)/python -m bnlib.experiments stale

unit: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not browser" tests

nbval: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --nbval --nbval-current-env --nbval-sanitize-with book/sanitize.cfg -p no:randomly book

html: $(STAMP)
	rm -rf _build/html _build/.doctrees
	$(BIN)/jupyter-book build . $(JB_FLAGS)

## Debian's Chromium for the browser check, installed with apt (as root, or with sudo) when missing.
chromium:
	@[ -x /usr/bin/chromium ] || { echo "Installing Debian's chromium (apt) for the browser check"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@[ -x /usr/bin/chromium ] || { echo "make chromium: /usr/bin/chromium is still missing after apt-get install chromium" >&2; exit 1; }

## Every page of _build/html (built by `make html`) in headless Chromium, cut off from the network;
## screenshots of the landing page and the first chapter go to _build/screenshots.
browser: $(STAMP) chromium
	$(BIN)/python -m pytest -q -m browser tests/test_browser.py

lint: $(STAMP)
	$(BIN)/ruff check bnlib tests benchmarks tools book/conftest.py
	$(BIN)/python tools/nbclean.py --check $(NOTEBOOKS)

## Re-execute every chapter in place (authors), then normalize its metadata.
execute: $(STAMP)
	for nb in $(NOTEBOOKS); do $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1800 $$nb || exit 1; done
	$(BIN)/python tools/nbclean.py $(NOTEBOOKS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

## Regenerate every book-scale result from scratch (GPU when present), then re-execute the chapters.
reproduce: $(STAMP)
	$(BIN)/python -m bnlib.experiments run --all --scale book --force --jobs $(JOBS)
	$(BIN)/python -m bnlib.experiments check --all --force
	$(MAKE) execute

clean:
	rm -rf _build .pytest_cache .hypothesis

# The two front doors: `make book` (set up, execute every chapter with papermill, render HTML) and `make test`.
PRESET ?= mini
VENV ?= .venv
PY := $(VENV)/bin/python
BUILD := _build
EXEC := $(BUILD)/executed
CHAPTERS := $(sort $(wildcard book/[0-9]*.ipynb))
# PROCESSES=N executes the chapters under `accelerate launch` (one process per GPU): sweeps split their
# configurations among the processes through the results store; so do the fine-tuning runs (one process each).
PROCESSES ?= 1
# DEVICE=cuda runs the preset on that device instead of its own (the device is part of every results key).
DEVICE ?=
# FRESH=1 executes every chapter again, even those whose notebook, preset, library and stored results are unchanged.
FRESH ?=
RUN_CHAPTERS = $(if $(filter 1,$(PROCESSES)),$(PY) -m,$(VENV)/bin/accelerate launch --multi_gpu \
  --num_processes $(PROCESSES) --num_machines 1 --mixed_precision no --dynamo_backend no -m)
# The front page reads the chapters' results from the store: it runs after them (in `make book` and in nbval).
INTRO := book/intro.ipynb
APT_PACKAGES := espeak-ng alsa-utils sound-theme-freedesktop
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# MathJax 3, served from the built book itself (npm registry; Sphinx's mathjax_path points at it).
MATHJAX_VERSION := 3.2.2
VENDOR := .vendor
MATHJAX := $(VENDOR)/node_modules/mathjax/es5
MATHJAX_STAMP := $(VENDOR)/.mathjax-$(MATHJAX_VERSION)
# The book's static folder (html_static_path in _config.yml): MathJax and the stylesheet.
STATIC := $(EXEC)/_assets
SCREENSHOTS := $(BUILD)/screenshots

.PHONY: setup system-packages mathjax browser book book-check test lint bench clean

setup: $(VENV)/.installed

# Debian packages: espeak-ng (synthetic speech), alsa-utils (real speech clips), freedesktop sounds.
system-packages:
	@if ! command -v espeak-ng >/dev/null || [ ! -f /usr/share/sounds/alsa/Front_Center.wav ] \
	    || [ ! -d /usr/share/sounds/freedesktop ]; then \
	  echo "installing $(APT_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi

$(VENV)/.installed: pyproject.toml requirements/pins.txt | system-packages
	[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements/pins.txt -e ".[book,test,mini]"
	$(PY) -m mamlib fetch
	touch $@

# MathJax from the npm registry (npm itself from Debian when the machine has none), once per version.
mathjax: $(MATHJAX_STAMP)

$(MATHJAX_STAMP):
	@command -v npm >/dev/null || { echo "installing npm"; $(SUDO) apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq npm; }
	npm install --prefix $(VENDOR) --no-save --no-audit --no-fund --loglevel=error mathjax@$(MATHJAX_VERSION)
	test -f $(MATHJAX)/tex-mml-chtml.js
	touch $@

# Debian's Chromium, for the browser check of the rendered book.
browser:
	@command -v chromium >/dev/null || { echo "installing chromium"; $(SUDO) apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# Execute every chapter, then the front page, on $(PRESET) into $(EXEC)/book (sources stay output-free); tidy the
# executed copies (parameter cells hidden, one line naming the preset, no stderr or progress residue) and lay out
# the static files; then render with execution off.
book: setup mathjax
	rm -rf $(EXEC) && mkdir -p $(EXEC)/book
	cp _config.yml _toc.yml $(EXEC)/
	$(if $(wildcard book/*.md),cp $(wildcard book/*.md) $(EXEC)/book/)
	$(RUN_CHAPTERS) mamlib.report.execute --preset "$(PRESET)" --out $(EXEC) $(if $(DEVICE),--device $(DEVICE)) \
	  $(if $(FRESH),--fresh) \
	  $(CHAPTERS) $(INTRO)
	$(PY) tools/prepare_executed.py $(EXEC)/book/*.ipynb --static $(STATIC) --mathjax $(MATHJAX)
	rm -rf $(BUILD)/html
	$(VENV)/bin/jupyter-book build $(EXEC) --path-output . > $(EXEC)/jupyter-book.log 2>&1 \
	  || { tail -40 $(EXEC)/jupyter-book.log; exit 1; }
	@grep -E "WARNING|ERROR" $(EXEC)/jupyter-book.log || true
	@echo "book rendered on preset $(PRESET): $(BUILD)/html/index.html"

# Open every page of the rendered book in headless Chromium, offline: typeset equations, images, tables and
# figures, internal links, no network request; screenshots under $(SCREENSHOTS).
book-check: browser
	$(PY) tests/browser/check_book.py --html $(BUILD)/html --executed $(EXEC) --screenshots $(SCREENSHOTS)

# Unit tests plus nbval over every chapter and the front page as stored (parameters-cell defaults = smoke), on a
# fresh cache; then the smoke book rendered from that cache and checked in the browser.
test: setup mathjax browser
	$(PY) -m ruff check mamlib tests benchmarks tools
	set -e; cache=$$(mktemp -d); trap 'rm -rf "$$cache"' EXIT; \
	MAM_CACHE_DIR=$$cache $(PY) -m pytest -q -p no:cacheprovider tests $(CHAPTERS) $(INTRO) --nbval-lax \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg; \
	MAM_CACHE_DIR=$$cache $(MAKE) --no-print-directory book PRESET=smoke
	$(MAKE) --no-print-directory book-check

bench: setup
	$(PY) benchmarks/bench_ctc_sweep.py
	$(PY) benchmarks/bench_prefix_cache.py
	$(PY) benchmarks/bench_whisper_cpu.py --utterances 8
	$(PY) benchmarks/bench_lmam_step.py
	$(PY) benchmarks/bench_whisper_prefix.py
	$(PY) benchmarks/bench_malloc.py
	$(PY) benchmarks/paper_cost.py
	$(PY) benchmarks/bench_merge.py

clean:
	rm -rf $(BUILD)

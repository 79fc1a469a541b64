# Two set-up commands on a fresh machine: `make demo` and `make test`.
# `make browser-deps` adds what the browser-driven parts need (Debian's chromium and fonts, npm packages).
# Each (re)creates the virtual environment when requirements change.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench settings-doc clean browser-deps cards

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# Debian's chromium (Playwright never downloads a browser) and the fonts the cards are drawn with.
BROWSER_APT := chromium fonts-liberation fonts-noto-color-emoji
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser-deps: node_modules/.package-lock.json
	@dpkg -s $(BROWSER_APT) >/dev/null 2>&1 || { \
		echo "browser-deps: installing $(BROWSER_APT) with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(BROWSER_APT) >/dev/null; } || { \
		echo "browser-deps: could not install $(BROWSER_APT); the browser tests cannot run" >&2; exit 1; }
	@test -x /usr/bin/chromium || { echo "browser-deps: /usr/bin/chromium is missing" >&2; exit 1; }

# Microsoft's Adaptive Cards renderer and markdown-it, exactly as package-lock.json pins them.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

demo: $(STAMP)
	$(PY) bot.py demo

# Every card state, drawn in chromium by Microsoft's renderer, into docs/cards/ (the README shows some).
cards: $(STAMP) browser-deps
	$(PY) -m fakes.web.gallery --out docs/cards

test: $(STAMP) browser-deps
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2

bench: $(STAMP)
	for script in bench/webhook_ack.py bench/parse_metadata.py bench/graph_inventory.py bench/reminder_sweep.py bench/hostile_inputs.py bench/websocket_events.py \
		bench/reply_latency.py bench/cold_start.py bench/reminder_posting.py; do \
		$(PY) $$script || exit 1; done

settings-doc: $(STAMP)
	$(PY) bot.py settings --write-docs

clean:
	rm -rf $(VENV) var .pytest_cache

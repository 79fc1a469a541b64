# Two set-up commands on a fresh machine: `make demo` and `make test`.
# Each (re)creates the virtual environment when requirements change.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench settings-doc clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) bot.py demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	for script in bench/webhook_ack.py bench/parse_metadata.py bench/graph_inventory.py bench/reminder_sweep.py; do \
		$(PY) $$script || exit 1; done

settings-doc: $(STAMP)
	$(PY) bot.py settings --write-docs

clean:
	rm -rf $(VENV) var .pytest_cache

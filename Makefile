# Two commands on a fresh machine: `make quickstart` and `make test`.
PYTHON ?= python3
VENV ?= .venv
INSTALLED := $(VENV)/.installed

.PHONY: install quickstart test test-all benchmarks clean

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -c constraints.txt -e ".[serving,postgres,transformers,dev]"
	touch $(INSTALLED)

install: $(INSTALLED)

quickstart: $(INSTALLED)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/quickstart.sh

test: $(INSTALLED)
	$(VENV)/bin/pytest

# Everything, including slow tests and the ones that read ../shared/data.
test-all: $(INSTALLED)
	$(VENV)/bin/pytest -m ""

# Each script rewrites its own section of docs/benchmarks.md. transformers.py
# fine-tunes encoders on the CPU and takes about an hour; run it on its own.
benchmarks: $(INSTALLED)
	$(VENV)/bin/python benchmarks/quality.py
	$(VENV)/bin/python benchmarks/speed.py
	$(VENV)/bin/python benchmarks/serving.py
	$(VENV)/bin/python benchmarks/kb_search.py
	$(VENV)/bin/python benchmarks/routing_replay.py

clean:
	rm -rf $(VENV) .nightdesk .pytest_cache

# Two commands matter: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test install lint typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch first: left to the resolver, sentence-transformers pulls a CUDA build of several GB.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The console's browser tests drive Debian's chromium (Playwright's own browser download fails offline).
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mca demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadscope

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Every benchmark, then one table of each figure beside its floor (from those that use bench/report.py).
bench: $(STAMP)
	rm -f .mca-bench/summary.jsonl && mkdir -p .mca-bench
	for b in bench/bench_*.py; do MCA_BENCH_SUMMARY=$(CURDIR)/.mca-bench/summary.jsonl $(BIN)/python $$b || exit 1; done
	$(BIN)/python bench/report.py .mca-bench/summary.jsonl

clean:
	rm -rf $(VENV) .mca .pytest_cache .mypy_cache .ruff_cache

# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
EXTRAS := torch,tensorflow,demo,test,bench,ray
# `:=`, not `?=`: an OUT in the environment must not redirect the demo or `make clean`
OUT := demo-output

.PHONY: demo test bench lint clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m deepshap demo --out $(OUT)

test: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) benchmarks/run.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache src/*.egg-info seed*-output

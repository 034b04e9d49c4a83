# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
EXTRAS := torch,tensorflow,demo,jobs,ray,test,bench,docs
# `:=`, not `?=`: an OUT in the environment must not redirect the demo or `make clean`
OUT := demo-output

.PHONY: demo test bench lint types docs clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m deepshap demo --out $(OUT)

test: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/mypy
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir site
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) benchmarks/run.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks examples

# mypy on src/, configured in pyproject.toml ([tool.mypy])
types: $(VENV)/.installed
	$(VENV)/bin/mypy

# the documentation site (mkdocs.yml) into site/; --strict turns a broken link or reference into an error
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache .mypy_cache site src/*.egg-info seed*-output

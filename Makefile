# Quick start:  make lab   (JupyterLab on notebooks/)   |   make test   (unit tests + strict nbval)
# Both create .venv on first use. In a prepared environment without registry access
# (for example a GPU box with torch preinstalled) run with NO_VENV=1 to use the
# current python as it is:  make test NO_VENV=1 PYTHON=python3
VENV ?= .venv
BOOTSTRAP_PYTHON ?= python3
ifeq ($(NO_VENV),1)
PYTHON ?= python3
SETUP :=
else
PYTHON := $(VENV)/bin/python
SETUP := $(VENV)/.installed
endif
# Importable without an install, so NO_VENV works from a bare checkout.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

NBVAL_FLAGS := --nbval --nbval-current-env --nbval-cell-timeout=600 --nbval-sanitize-with notebooks/nbval_sanitize.cfg

.PHONY: test lab setup unit notebooks execute bench site student clean

setup: $(SETUP)

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(VENV)/bin/python || $(BOOTSTRAP_PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -r requirements.txt
	$(VENV)/bin/python -m pip install -q --no-deps -e .
	touch $@

test: $(SETUP)
	$(PYTHON) -m pytest tests notebooks $(NBVAL_FLAGS) -q -p no:cacheprovider

unit: $(SETUP)
	$(PYTHON) -m pytest tests -q -p no:cacheprovider

notebooks: $(SETUP)
	$(PYTHON) -m pytest notebooks $(NBVAL_FLAGS) -q -p no:cacheprovider

lab: $(SETUP)
	$(PYTHON) -m jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

# Re-run every notebook in place so the committed outputs match what a learner gets.
execute: $(SETUP)
	$(PYTHON) tools/execute_notebooks.py

# The static course site (site/index.html) from the executed notebooks; no CDN needed to read it.
site: $(SETUP)
	$(PYTHON) tools/build_site.py --out site

# Student notebooks (student/): solution cells removed, answer cells left as stubs.
student: $(SETUP)
	$(PYTHON) tools/make_student.py --out student

bench: $(SETUP)
	status=0; for b in benchmarks/bench_*.py; do $(PYTHON) $$b || status=1; done; exit $$status  # every benchmark runs; a missed target fails at the end

clean:
	rm -rf $(VENV) build *.egg-info site student

# sora_mini — the two commands are `make run` and `make test`; each does its own set-up.
SCALE ?= tiny
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch and torchvision are installed first so that pip takes a matching pair; override for
# another machine, e.g. `make run TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cpu"`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
export HF_HUB_OFFLINE := 1
export PYTHONWARNINGS := ignore::DeprecationWarning

.PHONY: help install run test unit layers nbtest browser-test lab bench clean strip lint

help:
	@echo "make run [SCALE=tiny|small|base]   set up, then execute every notebook into runs/<scale>/"
	@echo "make test                          set up, then unit tests and every notebook under nbval"
	@echo "make browser-test [SCALE=small]    click Generate in notebook 11 in a real JupyterLab (headless Chromium)"
	@echo "make lab                           open JupyterLab on notebooks/"
	@echo "make bench                         run every benchmark, figures to runs/bench/"
	@echo "make clean                         remove runs/ (add VENV too with make distclean)"

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[notebooks,dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m sora_mini.cli run-notebooks --scale $(SCALE)

unit: $(STAMP)
	$(PY) -m pytest tests

nbtest: $(STAMP)
	$(PY) -m pytest --nbval-lax --nbval-current-env -p no:python -p no:cacheprovider \
		--nbval-cell-timeout=600 notebooks

# the layers of docs/architecture.md, enforced (configured in pyproject.toml)
layers: $(STAMP)
	$(VENV)/bin/lint-imports

test: unit layers nbtest

# the sampler of notebook 11 clicked in a real JupyterLab: Playwright from PyPI (the browser extra) drives
# Debian's chromium (never `playwright install`); the test skips, saying why, when either is missing
browser-test: $(STAMP)
	$(PY) -m pip install -q -e ".[browser]" || echo "pip could not install playwright: the browser test will skip"
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q chromium; } \
		|| echo "no chromium (apt-get install -y chromium): the browser test will skip"
	SORA_MINI_BROWSER_SCALE=$(SCALE) $(PY) -m pytest -m browser -s -rs tests/test_browser.py

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

bench: $(STAMP)
	$(PY) -m sora_mini.cli bench

strip: $(STAMP)
	$(VENV)/bin/nbstripout --keep-id notebooks/*.ipynb

lint: $(STAMP)
	$(VENV)/bin/ruff check sora_mini tests benchmarks

clean:
	rm -rf runs

distclean: clean
	rm -rf $(VENV)

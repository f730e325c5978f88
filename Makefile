# Two commands do the whole set-up on a fresh machine: `make demo` and `make test`.
# TORCH_SPEC picks the PyTorch build; install it before p2c so pip never pulls another one.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
DEMO_OUT ?= out/astronaut_cartoon.png
# The demo's video: the built-in clip (the astronaut panned, zoomed and tilted; 4 s of 720p, made at run time).
DEMO_CLIP ?= out/astronaut_cartoon.mp4
DEMO_ARGS ?=

.PHONY: install demo test lint format clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	mkdir -p $(dir $(DEMO_OUT))
	$(VENV)/bin/p2c-image builtin:astronaut $(DEMO_OUT) --composite $(DEMO_ARGS)
	mkdir -p $(dir $(DEMO_CLIP))
	$(VENV)/bin/p2c-video builtin:astronaut-clip $(DEMO_CLIP) $(DEMO_ARGS)

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache

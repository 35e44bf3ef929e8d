# Two commands do all set-up on a fresh machine:
#   make demo   creates or refreshes .venv, installs vidslim, runs `vidslim demo`
#   make test   creates or refreshes .venv, installs vidslim with its test extras, runs ruff and pytest
# (`make test-quick` does the same but skips the tests marked slow.)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-quick lint venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changes; the editable install picks up source edits by itself.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/vidslim demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

test: lint
	$(BIN)/python -m pytest -q $(ARGS)

# The same without the tests marked slow (@pytest.mark.slow, over 5 s each): for quick edit-test loops.
test-quick: lint
	$(BIN)/python -m pytest -q -m "not slow" $(ARGS)

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache

# The README's two commands: `make demo` (the main job) and `make test` (the whole suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test deps venv bench clean

deps:
	bash hack/install-deps.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

demo: deps venv
	bash hack/demo.sh

test: deps venv
	$(BIN)/pytest -q

bench: deps venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .demo .pytest_cache

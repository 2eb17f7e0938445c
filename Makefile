# The README's commands: `make test` and `make demo` (and `make bench`, not part of test). All build .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@if pkg-config --exists libsystemd 2>/dev/null; then \
		$(BIN)/pip install --quiet -e '.[test,systemd]'; \
	else \
		echo "libsystemd not found: installing without the systemd extra"; \
		$(BIN)/pip install --quiet -e '.[test]'; \
	fi
	# The official client pins pyvips==2.0.2 (no bundled libvips); it runs on our newer pyvips.
	$(BIN)/pip install --quiet --no-deps 'skylab-studio==0.0.15'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check skylab_watch tests
	$(BIN)/mypy skylab_watch
	$(BIN)/python -m pytest -q -n 4

demo: $(STAMP)
	$(BIN)/skylab-watch demo

# The benchmarks of issue 13 (README, "Benchmarks"): minutes, not part of `make test`.
# A subset or smoke run: make bench ARGS="ingest --quick"
bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info

# The two commands of the README: `make demo` and `make test`. Both install first.
PY := .venv/bin/python

.PHONY: setup demo test bench clean

setup:
	@bash scripts/setup.sh

## Runs the demo: in a window when a display exists, otherwise headless into out/demo.
demo: setup
	$(PY) -m demo_renderer demo --out out/demo

## Runs the test suite (CI runs exactly this).
test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

## Renderer timings: G-buffer, shading and ground-truth cost per built-in scene.
bench: setup
	$(PY) -m demo_renderer bench

clean:
	rm -rf out .pytest_cache

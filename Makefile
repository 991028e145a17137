# The two commands of the README: `make demo` and `make test`. Both install first.
PY := .venv/bin/python

.PHONY: setup demo test bench c-example clean

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

## The plugin's C ABI: build libstss_plugin.so and the C example engine, run the engine.
c-example: setup
	$(PY) -m plugin.c_abi --build
	gcc -std=c99 -O2 -Wall -Wextra -Werror plugin/examples/engine.c -Iplugin/include \
	    -Lbuild/plugin -lstss_plugin -Wl,-rpath,"$(CURDIR)/build/plugin" -lm -o build/plugin/engine
	build/plugin/engine

clean:
	rm -rf out build .pytest_cache

# stgraph — the two commands for a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing (or when the pins changed) and are fast afterwards.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.stgraph-installed

# Run-time environment: 2-core CPU machines, never any network access at run time.
export OMP_NUM_THREADS ?= 2
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := 0
export YOLO_CONFIG_DIR := $(CURDIR)/.cache/ultralytics
export ORT_DISABLE_TELEMETRY := 1
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib
export MPLBACKEND := Agg

.PHONY: install demo test test-slow bench bench-ped2 bench-stream clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps ultralytics==8.4.190
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: install
	$(PY) -m stgraph.demo --out outputs/demo

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

bench: install
	$(PY) benchmarks/graph_build.py

bench-ped2: install  # needs ../shared/data; ~7 min cold, ~2 min with the detection cache
	OMP_NUM_THREADS=1 $(PY) benchmarks/ped2_anograph.py

bench-stream: install  # needs ../shared/data; ~5 min
	OMP_NUM_THREADS=1 $(PY) benchmarks/stream.py

clean:
	rm -rf $(VENV) .cache outputs .pytest_cache

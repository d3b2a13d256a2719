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

.PHONY: install demo test test-slow test-ray bench bench-ped2 bench-stream bench-scale clean

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

test-ray: install  # the optional Ray engine (pip install 'stgraph[ray]') and the torchrun tests
	$(PY) -m pip install -q ray==2.60.0
	$(PY) -m pytest -q -m slow tests/test_engine.py tests/test_distributed.py

bench: install
	$(PY) benchmarks/graph_build.py

bench-ped2: install  # needs ../shared/data; ~7 min cold, ~2 min with the detection cache
	OMP_NUM_THREADS=1 $(PY) benchmarks/ped2_anograph.py

bench-stream: install  # needs ../shared/data; ~5 min
	OMP_NUM_THREADS=1 $(PY) benchmarks/stream.py

bench-scale: install  # DGI epoch on 100,000 nodes / 1,000,000 edges, before and after; ~2 min
	OMP_NUM_THREADS=1 $(PY) benchmarks/scale.py --threads 1
	OMP_NUM_THREADS=2 $(PY) benchmarks/scale.py --threads 2

clean:
	rm -rf $(VENV) .cache outputs .pytest_cache

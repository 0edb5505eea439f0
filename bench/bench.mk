# Benchmarks and the load test, included by the Makefile (`-include bench/bench.mk`).
# Uses PY (.venv/bin/python) and STAMP (the installed-venv marker). Neither is part of `make test`.
#
#   make bench                       every figure, table + bench/results.json (a few minutes)
#   make bench BENCH_ARGS=--quick    small samples (smoke run, ~30 s)
#   make bench BENCH_ARGS="--only latency,cpu"
#   make load                        50 shoppers for 60 s against the local stack
#   make load LOAD_ARGS="--duration 5 --shoppers 5"

PY ?= .venv/bin/python
BENCH_ARGS ?=
LOAD_ARGS ?=

.PHONY: bench load

bench: $(STAMP)
	$(PY) -m bench.run $(BENCH_ARGS)

load: $(STAMP)
	$(PY) -m load.run $(LOAD_ARGS)

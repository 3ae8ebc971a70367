#!/usr/bin/env bash
# Sets up the environment (no datasets needed) and runs the test suite: most files under pytest,
# the files BUILD names under Bazel (LTH_SKIP_BAZEL=1: all of them under pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
LTH_SKIP_DATA=1 bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=3
# Python keeps the modules it compiles (__pycache__) only where PYTHONDONTWRITEBYTECODE is unset.
# Where it is set, every new interpreter (the command-line tests' processes, Ray's workers,
# Bazel's tests) compiles TensorFlow's modules again: importing lth_tf took about 14 CPU-seconds
# a process on the 2-core machine, 5 once they are kept.
unset PYTHONDONTWRITEBYTECODE
# Every test file runs once: the files in BUILD's BAZEL_TESTS under Bazel (below), the rest here.
ignored=()
if [ "${LTH_SKIP_BAZEL:-0}" != "1" ]; then
  for path in $(.venv/bin/python scripts/bazel_tests.py); do
    ignored+=("--ignore=${path}")
  done
fi
# Two worker processes (LTH_TEST_WORKERS): much of a test's time is single-threaded (TensorFlow's
# start-up in the command-line tests' subprocesses, graph tracing), so two nearly halve the wall time.
# --dist loadgroup: the tests of one xdist_group (the Ray cluster's) run in one worker process.
.venv/bin/python -m pytest -q -n "${LTH_TEST_WORKERS:-2}" --dist loadgroup tests ${ignored[@]+"${ignored[@]}"} "$@"
if [ "${LTH_SKIP_BAZEL:-0}" != "1" ]; then
  if ! command -v bazel >/dev/null 2>&1; then
    (apt-get install -y -q bazel-bootstrap || (apt-get update -q && apt-get install -y -q bazel-bootstrap)) >/dev/null
  fi
  bash scripts/bazel_test.sh
fi

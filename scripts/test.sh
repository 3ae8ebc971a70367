#!/usr/bin/env bash
# Sets up the environment (no datasets needed) and runs the test suite, then the Bazel tests.
set -euo pipefail
cd "$(dirname "$0")/.."
LTH_SKIP_DATA=1 bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=3
.venv/bin/python -m pytest -q tests "$@"
if [ "${LTH_SKIP_BAZEL:-0}" != "1" ]; then
  if ! command -v bazel >/dev/null 2>&1; then
    (apt-get install -y -q bazel-bootstrap || (apt-get update -q && apt-get install -y -q bazel-bootstrap)) >/dev/null
  fi
  bash scripts/bazel_test.sh
fi

#!/usr/bin/env bash
# Runs the Bazel test targets offline with the project's virtual environment as the Python.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$PWD/.venv/bin/python"
export PATH="$PWD/.venv/bin:$PATH"
bazel --batch test //:all \
  --python_path="$PY" \
  --action_env=PATH --test_env=PATH --test_env=HOME --test_env=TF_CPP_MIN_LOG_LEVEL=3 \
  --jobs=2 --local_test_jobs=1 --test_output=errors --noshow_progress "$@"

#!/usr/bin/env bash
# Runs the Bazel test targets offline with the project's virtual environment as the Python.
#   bash scripts/bazel_test.sh                  # every target in the top-level BUILD (//:all)
#   bash scripts/bazel_test.sh //:test_config   # only the named targets
# Other arguments (e.g. --nocache_test_results) are passed on to `bazel test`.
# Needs .venv (bash scripts/setup.sh; LTH_SKIP_DATA=1 skips the datasets) and Debian's
# bazel-bootstrap (Bazel 4.2.3). Nothing is downloaded: WORKSPACE maps the repositories
# Bazel would fetch to the stand-ins in third_party/bazel/. Bazel keeps its output base in
# the user's cache, so a second run reuses cached test results.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$PWD/.venv/bin/python"
if [ ! -x "$PY" ]; then
  echo "bazel_test.sh: $PY not found; run 'bash scripts/setup.sh' first" >&2
  exit 2
fi
if ! command -v bazel >/dev/null 2>&1; then
  echo "bazel_test.sh: bazel not found; install Debian's bazel-bootstrap" >&2
  exit 2
fi
export PATH="$PWD/.venv/bin:$PATH"

targets=()
flags=()
for arg in "$@"; do
  case "$arg" in
    //* | :*) targets+=("$arg") ;;
    *) flags+=("$arg") ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  targets=(//:all)
fi

# --batch: no Bazel server lingers afterwards. Two tests at a time, one per core.
bazel --batch --host_jvm_args=-Xmx2g test \
  --python_path="$PY" \
  --action_env=PATH --test_env=PATH --test_env=HOME --test_env=TF_CPP_MIN_LOG_LEVEL=3 \
  --jobs=2 --local_test_jobs=2 --test_output=errors --noshow_progress \
  ${flags[@]+"${flags[@]}"} -- "${targets[@]}"

"""Prints the test files BUILD's BAZEL_TESTS names (one per line), for scripts/test.sh."""
import ast
import os
import re
import sys


def bazel_tests(build_file: str):
  text = open(build_file, encoding="utf-8").read()
  match = re.search(r"^BAZEL_TESTS = (\[.*?\])", text, re.M | re.S)
  if not match:
    sys.exit(f"{build_file}: no BAZEL_TESTS list")
  return ast.literal_eval(match.group(1))


if __name__ == "__main__":
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  print("\n".join(bazel_tests(os.path.join(root, "BUILD"))))

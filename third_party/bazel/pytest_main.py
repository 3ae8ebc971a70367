"""Runs one pytest file as a Bazel py_test: `pytest_main.py tests/test_x.py`."""
import os
import sys

import pytest

if __name__ == "__main__":
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  sys.path.insert(0, root)
  os.chdir(root)
  sys.exit(pytest.main([sys.argv[1], "-q", "-p", "no:cacheprovider"]))

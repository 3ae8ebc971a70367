"""The zoo's modules as a user's own files, in the current directory, and trusted: the user who
wrote them lets their tickets and experiment directories run them (`--trust_code`)."""
import ast
import os

import pytest

from conftest import user_modules
from lth_tf import user_code

HERE = os.path.dirname(os.path.abspath(__file__))


def _functions(name):
  with open(os.path.join(HERE, name)) as handle:
    return [node.name for node in ast.parse(handle.read()).body
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")]


ZOO_CODE = ([f"zoo_models:{name}" for name in _functions("zoo_models.py")]
            + [f"zoo_keras3:{name}" for name in _functions("zoo_keras3.py")]
            + [f"py:zoo_data:{name}" for name in _functions("zoo_data.py")])


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
  monkeypatch.setattr(user_code, "_trusted", set(ZOO_CODE))
  return user_modules(tmp_path, monkeypatch, HERE, ("zoo_models.py", "zoo_keras3.py", "zoo_data.py"))

"""The zoo's modules as a user's own files, in the current directory."""
import os

import pytest

from conftest import user_modules

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
  return user_modules(tmp_path, monkeypatch, HERE, ("zoo_models.py", "zoo_data.py"))

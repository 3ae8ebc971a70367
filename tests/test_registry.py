"""Registries: a plug-in is one file (its package imports every module), unknown names list the
choices."""
import sys

import pytest

from lth_tf import data, models, pruning
from lth_tf.errors import ConfigError
from lth_tf.registry import Registry


def test_every_module_of_a_plugin_package_is_imported_and_registers_itself(tmp_path, monkeypatch):
  package = tmp_path / "plugins_for_test"
  package.mkdir()
  (package / "__init__.py").write_text(
      "from lth_tf.registry import Registry, import_modules\n"
      "THINGS = Registry('thing')\n"
      "import_modules(__name__, __path__)\n")
  for name in ("alpha", "beta"):
    (package / f"{name}.py").write_text(
        f"from plugins_for_test import THINGS\nTHINGS.add({name!r}, {name!r})\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  try:
    import plugins_for_test  # pylint: disable=import-outside-toplevel,import-error
    assert plugins_for_test.THINGS.names() == ["alpha", "beta"]
  finally:
    for name in [m for m in sys.modules if m.startswith("plugins_for_test")]:
      del sys.modules[name]


def test_the_shipped_plugins_are_found():
  assert {"lenet300_100", "conv2", "resnet20", "vgg19"} <= set(models.MODELS.names())
  assert {"magnitude", "random"} <= set(pruning.STRATEGIES.names())
  assert {"npz", "tfds", "py"} <= set(data.SCHEMES.names())
  assert {"synthetic", "fashion_mnist", "cifar10"} <= set(data.SOURCES.names())


def test_an_unknown_name_lists_the_choices():
  registry = Registry("gadget")
  registry.add("b", 2)
  registry.add("a", 1)
  with pytest.raises(ConfigError, match="unknown gadget 'c'; choose one of: a, b"):
    registry.get("c")
  with pytest.raises(ValueError, match="registered twice"):
    registry.add("a", 3)


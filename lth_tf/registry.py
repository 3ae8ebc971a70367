"""A small name -> object registry: the plug-in points (commands, datasets, models, branches,
pruning strategies, optimizers, export formats, ...); a new entry is one registration."""
import importlib
import pkgutil
from typing import Callable, Dict, Generic, Iterator, TypeVar

from lth_tf.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
  """Maps names to objects; unknown names raise a `ConfigError` listing the choices."""

  def __init__(self, kind: str):
    self.kind = kind
    self._entries: Dict[str, T] = {}

  def register(self, name: str) -> Callable[[T], T]:
    """Decorator that registers `obj` under `name`."""
    def decorator(obj: T) -> T:
      self.add(name, obj)
      return obj
    return decorator

  def add(self, name: str, obj: T) -> None:
    if name in self._entries:
      raise ValueError(f"{self.kind} {name!r} is registered twice")
    self._entries[name] = obj

  def get(self, name: str) -> T:
    try:
      return self._entries[name]
    except KeyError:
      raise ConfigError(
          f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(self._entries))}"
      ) from None

  def __contains__(self, name: str) -> bool:
    return name in self._entries

  def __iter__(self) -> Iterator[str]:
    return iter(sorted(self._entries))

  def names(self):
    return sorted(self._entries)


def import_modules(package: str, path) -> None:
  """Imports every module of a package, so that a module that registers itself (a model family,
  a pruning strategy, a dataset source) is found by adding its file, with no other edit."""
  for info in pkgutil.iter_modules(path):
    importlib.import_module(f"{package}.{info.name}")

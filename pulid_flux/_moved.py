"""Old import paths of modules that moved, kept working with a DeprecationWarning.

``pulid_flux.inject`` (README) and the other engine modules lived at the top of the package until
the engine became :mod:`pulid_flux.engine`. A meta-path finder answers the old names with the new
modules themselves (the same objects, so ``isinstance`` checks and monkeypatches agree) instead of
stub files, so the package's folders keep showing its layers and ``pulid_flux/face`` holds no
import of the engine, not even an alias.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: old module path (relative to the package) -> new one
MOVED = {
    "attention": "engine.attention",
    "ca": "engine.ca",
    "idformer": "engine.idformer",
    "eva": "engine.eva",
    "model": "engine.model",
    "identity": "engine.identity",
    "inject": "engine.inject",
    "face.encode": "engine.encoder",
}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def create_module(self, spec):
        return None             # a throw-away module; exec_module swaps in the real one

    def exec_module(self, module):
        warnings.warn(f"{self.old} moved to {self.new}; the old import path will be removed in a later release",
                      DeprecationWarning, stacklevel=2)
        # The import system returns whatever sys.modules holds under the name once this returns.
        sys.modules[self.old] = importlib.import_module(self.new)


class _MovedFinder(importlib.abc.MetaPathFinder):
    def __init__(self, package: str):
        self.aliases = {f"{package}.{old}": f"{package}.{new}" for old, new in MOVED.items()}

    def find_spec(self, fullname, path=None, target=None):
        new = self.aliases.get(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(fullname, new))


def install(package: str) -> None:
    """Answer the old paths under ``package`` (the name this package was imported as)."""
    if not any(isinstance(f, _MovedFinder) and f.aliases == _MovedFinder(package).aliases for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder(package))

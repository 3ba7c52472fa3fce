"""Public names of a package imported on first use (PEP 562), so that importing the package costs little."""
from __future__ import annotations

import importlib


def lazy_names(package: str, namespace: dict, sources: dict):
    """``__getattr__`` and ``__dir__`` for ``package`` whose public names come from ``sources``:
    name -> relative module, or name -> (relative module, attribute) for a name defined under another one.
    Each name is imported when first asked for and then kept in ``namespace``."""
    def __getattr__(name):
        if name not in sources:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = sources[name] if isinstance(sources[name], tuple) else (sources[name], name)
        value = getattr(importlib.import_module(module, package), attribute)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(sources))
    return __getattr__, __dir__

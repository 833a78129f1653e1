"""LeJEPA: SIGReg, the statistical tests behind it and the LeJEPA loss.

    from lejepa import SIGReg, LeJEPALoss, stats

The loss core (``stats``, ``sigreg``, ``loss``) depends on torch only. It is imported
on first use, so that torch-free modules (``lejepa.config_errors``, the workflow's
planning helpers) load on a machine without torch, such as a cluster's login node.
"""

import importlib

__all__ = ["SIGReg", "LeJEPALoss", "stats"]
__version__ = "0.1.0"

_LAZY = {
    "SIGReg": ("lejepa.sigreg", "SIGReg"),
    "LeJEPALoss": ("lejepa.loss", "LeJEPALoss"),
    "stats": ("lejepa.stats", None),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'lejepa' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LAZY])

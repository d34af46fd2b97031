"""torchvision importable beside the CPU torch (Gemma 3n needs it through ``timm``).

PyPI's torchvision wheels are built against the CUDA torch. With the CPU torch
ERT installs, torchvision's compiled detection ops (``nms``, ``roi_align``…)
cannot load, and torchvision 0.28 then fails at import while registering fake
and autograd kernels for those missing ops ("operator torchvision::nms does not
exist"); transformers, which imports torchvision whenever it is installed, then
fails too ("Could not import module 'AutoProcessor'") — for every model, not only
Gemma 3n. Nothing ERT runs uses those ops; ``timm`` needs torchvision's Python
parts (transforms, ``FrozenBatchNorm2d``). So at torchvision's first import, if
its ops do not load, the two modules that only register kernels for them are
skipped. Where the ops load (a CUDA torch and its torchvision), nothing changes.
"""

from __future__ import annotations

import glob
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
from collections.abc import Sequence

# The torchvision modules that only register fake/autograd kernels for its compiled ops.
OP_REGISTRATIONS = ("torchvision._meta_registrations", "torchvision._autograd_registrations")


def ops_load(package_dir: str) -> bool:
    """Whether torchvision's compiled ops load with the torch installed here."""
    import torch

    for library in glob.glob(os.path.join(package_dir, "_C*.so")):
        try:
            torch.ops.load_library(library)
            return True
        except (OSError, RuntimeError):
            return False
    return False


class _FirstImport(importlib.abc.MetaPathFinder):
    """Looks at torchvision once, just before it is first imported."""

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name != "torchvision":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        folders = list(spec.submodule_search_locations or []) if spec else []
        if folders and not ops_load(folders[0]):
            for module in OP_REGISTRATIONS:
                sys.modules.setdefault(module, types.ModuleType(module))
        return spec


def install() -> None:
    """Arm the check (idempotent; costs nothing until torchvision is imported)."""
    if "torchvision" in sys.modules or any(isinstance(f, _FirstImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _FirstImport())

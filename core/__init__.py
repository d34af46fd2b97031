"""ERT core: all logic of the workbench, importable without Streamlit.

Importing this package first caps the native thread pools (see
:mod:`core.threads`): every entry point imports ``core`` before torch,
numpy or transformers. It also arms :mod:`core.torchvision_compat`, so a
torchvision wheel built for the CUDA torch cannot break transformers' imports.
"""

from core import threads as _threads
from core import torchvision_compat as _torchvision_compat

THREADS = _threads.configure()
_torchvision_compat.install()

__all__ = ["THREADS"]

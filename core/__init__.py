"""ERT core: all logic of the workbench, importable without Streamlit.

Importing this package first caps the native thread pools (see
:mod:`core.threads`): every entry point imports ``core`` before torch,
numpy or transformers.
"""

from core import threads as _threads

THREADS = _threads.configure()

__all__ = ["THREADS"]

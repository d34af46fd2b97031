"""A worker started ahead of its batch imports what its models need and loads nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

CODE = """
import sys
from core.asr import AsrModelSpec, create_backend
spec = AsrModelSpec(key="x:y", source="/nowhere/at/all", family={family!r},
                    backend={backend!r}, languages=("*",))
backend = create_backend(spec, "cpu")
assert {module!r} not in sys.modules
backend.preload()
print({module!r} in sys.modules, backend.loaded)
"""


@pytest.mark.parametrize(("backend", "family", "module"), [
    ("transformers", "whisper", "transformers.modeling_utils"),
    ("faster-whisper", "whisper", "faster_whisper"),
])
def test_preload_imports_the_backends_libraries_and_loads_no_model(backend, family, module):
    done = subprocess.run([sys.executable, "-c", CODE.format(backend=backend, family=family,
                                                             module=module)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.stdout.split() == ["True", "False"], done.stderr

"""torchvision (PyPI's CUDA build) beside the CPU torch must not break transformers or timm."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import json, sys
import core
from transformers import AutoProcessor, Gemma3nForConditionalGeneration  # noqa: F401
import timm, torch, torchvision
model = timm.create_model("test_efficientnet", pretrained=False)
print(json.dumps({
    "torch": torch.__version__, "torchvision": torchvision.__version__,
    "stubbed": [m for m in ("torchvision._meta_registrations",
                            "torchvision._autograd_registrations")
                if getattr(sys.modules[m], "__file__", None) is None],
    "ops": hasattr(torch.ops.torchvision, "nms") and torch.ops.torchvision.nms is not None,
}))
"""


def test_transformers_and_timm_import_with_the_installed_torchvision():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts["torchvision"].startswith("0.28.0")
    assert facts["torch"].startswith("2.13.0")  # torchvision did not bring another torch
    from core.torchvision_compat import ops_load

    import importlib.util

    folder = importlib.util.find_spec("torchvision").submodule_search_locations[0]
    # The kernel registrations are skipped exactly when the compiled ops cannot load.
    assert bool(facts["stubbed"]) == (not ops_load(folder))


def test_without_the_check_the_cuda_torchvision_breaks_transformers_here():
    """What the check is for: on this CPU torch, a plain import of torchvision fails."""
    from core.torchvision_compat import ops_load

    import importlib.util

    folder = importlib.util.find_spec("torchvision").submodule_search_locations[0]
    if ops_load(folder):
        return  # a torch whose torchvision ops load: nothing to work around
    out = subprocess.run([sys.executable, "-c", "import torchvision"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "torchvision::nms" in out.stderr

"""The README's newcomer paths, followed to the letter: a new ASR backend (with its own model
family) and a new figure, each written in a temporary package and the README's one line,
reach the registry, the plan, a transcription and every scored output without an edit
anywhere else."""

from __future__ import annotations

from core.asr import factory
from core.asr.families import FAMILIES
from core.figures import FIGURES

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

BACKEND_MODULE = '''
"""A backend that says how long each clip is: the README's "add a backend" path."""

from core.asr.base import Backend
from core.asr.families import Family, register_family

register_family(Family("echo", (("small", 5), ("", 20)), activation_fraction=1.0,
                       length_fixed_share=0.0))


class EchoBackend(Backend):
    families = ("echo",)
    weight_dtypes = {"cpu": "float32", "cuda": "float16"}
    activation_floor_gb = 0.05
    rtfx_prior = {"cpu": 50.0, "cuda": 500.0}
    _model_attrs = ("model",)
    model = None

    def require_available(self):
        return None  # nothing to download

    def _load(self):
        self.model = "loaded"

    def _transcribe_batch(self, clips, options):
        return [f"{round(clip.size / 16000)} seconds" for clip in clips]
'''

FIGURE_MODULE = '''
"""A figure: the README's "add a figure" path."""

from core.figures import register_figure


@register_figure("newcomer_long_refs", "long refs %", unit="%", scale=100,
                 per_sample=lambda s, _: float(s.ref_words > 3))
def long_refs(samples):
    return sum(s.ref_words > 3 for s, _ in samples) / len(samples)
'''

REGISTRY = '''
[models."echo:small"]
source = "echo-small"
backend = "echo"
family = "echo"
languages = ["en"]

[models."echo:wrong"]
source = "echo-wrong"
backend = "faster-whisper"
family = "echo"
'''


@pytest.fixture
def newcomer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The package a newcomer writes, importable, and factory.BACKENDS' one new line."""
    package = tmp_path / "newcomer_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "echo_backend.py").write_text(textwrap.dedent(BACKEND_MODULE))
    (package / "long_refs.py").write_text(textwrap.dedent(FIGURE_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(factory.BACKENDS, "echo", "newcomer_pkg.echo_backend:EchoBackend")
    import newcomer_pkg.echo_backend  # noqa: F401  (declares its family, as an import does)
    yield tmp_path
    FAMILIES.pop("echo", None)
    FIGURES.pop("newcomer_long_refs", None)
    for name in [m for m in sys.modules if m.startswith("newcomer_pkg")]:
        del sys.modules[name]


def _registry(root: Path) -> Path:
    """The registry with the new model's entry (the one that names the new backend)."""
    path = root / "asr_models.toml"
    path.write_text(REGISTRY.split('[models."echo:wrong"]')[0])
    return path


def test_a_new_backend_is_one_module_and_one_line(newcomer):
    from core.asr.dtype import load_dtype
    from core.asr.registry import load_asr_registry
    from core.evaluation.planner import make_plan
    from core.system import read_machine
    from core.transcribe import transcribe_clip

    registry = load_asr_registry(_registry(newcomer))
    spec = registry.get("echo:small")
    assert load_dtype(spec, "cpu") == "float32" and load_dtype(spec, "cuda:1") == "float16"
    plan = make_plan([spec], read_machine(), audio_seconds=600.0)
    need = plan.batches[0].needs[0]
    assert need.source == "estimated" and 0 < need.need_gb < 1  # its family's 5M params
    # its prior (50× real time at 100M parameters) scaled to its family's 5M
    assert 0 < need.seconds < 600.0 / 50.0
    clip = np.zeros(3 * 16000, np.float32)
    result = next(transcribe_clip(clip, ["echo:small"], registry=registry,
                                  reference="3 seconds"))
    assert result.error is None and result.text == "3 seconds" and result.wer == 0.0


def test_the_registry_holds_a_backend_to_the_families_it_declares(newcomer):
    from core.asr.registry import RegistryError, load_asr_registry

    path = newcomer / "wrong.toml"
    path.write_text(REGISTRY)
    with pytest.raises(RegistryError, match="faster-whisper runs whisper models only"):
        load_asr_registry(path)
    path.write_text(REGISTRY.split('[models."echo:wrong"]')[0]
                    + '[models."echo:typed"]\nsource = "x"\nbackend = "echo"\nfamily = "echo"\n'
                      'dtype = "bfloat16"\n')
    with pytest.raises(RegistryError, match="dtype applies to transformers models only"):
        load_asr_registry(path)


def test_a_new_figure_is_one_declaration(newcomer):
    from core.evaluation.summary import ModelSummary, csv_row
    from core.scoring import Prediction, render_table, score_predictions

    import newcomer_pkg.long_refs  # noqa: F401  (the declaration runs on import)

    predictions = [Prediction("echo:small", f"c{i}", ref, "3 seconds", "en")
                   for i, ref in enumerate(["3 seconds", "the cat sat on the mat"])]
    scores = score_predictions(predictions)
    assert scores["echo:small"].figures["newcomer_long_refs"] == pytest.approx(0.5)
    assert "long refs %" in render_table(scores)
    summary = ModelSummary.refused("echo:small", "")
    summary.figures = scores["echo:small"].figures
    assert csv_row(summary)["newcomer_long_refs"] == pytest.approx(0.5)

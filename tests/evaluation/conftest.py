"""Shared by the evaluation tests: a 5-sample set with a corrupt file, and a registry of
real and tiny models."""

from __future__ import annotations

from core.evaluation.config import RunConfig

import json
from pathlib import Path

import pytest

from tests.conftest import TINY_EN_REGISTRY
from tests.tiny_models import build_wav2vec2, build_whisper


@pytest.fixture(scope="session")
def bench(tmp_path_factory):
    """A 5-sample English set (one corrupt file) and a registry of real and tiny models."""
    from core.demo_data import make_demo_dataset

    root = tmp_path_factory.mktemp("eval")
    manifest = make_demo_dataset(root / "demo", langs=("en",), count=8)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows = [{**r, "audio_filepath": str((manifest.parent / r["audio_filepath"]).resolve())}
            for r in rows]
    corrupt = root / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage that is not audio")
    five = root / "five.jsonl"
    five.write_text("".join(json.dumps(r) + "\n" for r in rows[:4]) + json.dumps(
        {"audio_filepath": str(corrupt), "text": "this file is corrupt", "language": "en"}) + "\n")
    eight = root / "eight.jsonl"
    eight.write_text("".join(json.dumps(r) + "\n" for r in rows))
    whisper = build_whisper(root / "tiny-whisper")
    w2v = build_wav2vec2(root / "tiny-w2v")
    big = _big_wav2vec2(root / "big-w2v")
    registry = root / "asr_models.toml"
    registry.write_text(TINY_EN_REGISTRY + f"""
[models."whisper:tiny-random"]
source = "{whisper}"
[models."wav2vec2:tiny-random"]
source = "{w2v}"
[models."wav2vec2:big-random"]
source = "{big}"
[models."whisper:missing"]
source = "{root / 'no-such-model'}"
memory_gb_cpu = 0.5
[batches]
first = ["faster-whisper:tiny.en", "whisper:tiny-random"]
second = ["wav2vec2:tiny-random", "whisper:missing"]
""")
    return {"root": root, "five": five, "eight": eight, "registry": registry}


def _big_wav2vec2(folder: Path) -> Path:
    """Same vocabulary as the tiny one, ~60M parameters: enough to cross a low guard limit."""
    import torch
    from transformers import Wav2Vec2ForCTC

    build_wav2vec2(folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_size=768, num_hidden_layers=8, num_attention_heads=8,
                  intermediate_size=3072)
    (folder / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(Wav2Vec2ForCTC.config_class.from_dict(config))
    model.save_pretrained(folder)
    return folder


@pytest.fixture
def run_config(bench, tmp_path):
    """A RunConfig factory over the bench set, results in this test's folder."""
    return lambda **kw: _config(bench, tmp_path, **kw)


def _config(bench, tmp_path, **kw) -> RunConfig:
    defaults = dict(dataset=str(bench["five"]), out_dir=str(tmp_path / "runs"),
                    registry_path=str(bench["registry"]), use_cache=False)
    return RunConfig(**{**defaults, **kw})


def kill_mid_run(config: RunConfig, samples: int = 3, checkpointed: bool = False) -> int:
    """Start ``config``'s run in its own process group, SIGKILL the runner and its worker
    once ``samples`` samples are recorded (and, with ``checkpointed``, once a checkpoint has
    counted some: they come every 2 s), and return how many samples were recorded."""
    from core.evaluation.records import read_jsonl
    from core.evaluation.run_dir import MODELS_FILE, SAMPLES_FILE

    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    code = ("import core; from core.evaluation.config import RunConfig; "
            "from core.evaluation.runner import start; "
            f"start(RunConfig.from_dict({config.to_dict()!r}))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, start_new_session=True)
    recorded, models = config.run_dir / SAMPLES_FILE, config.run_dir / MODELS_FILE

    def counted() -> bool:
        return not checkpointed or any(
            r.get("status") == "running" and (r.get("samples_done") or 0) >= 1
            for r in read_jsonl(models))

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (len(read_jsonl(recorded)) >= samples
                                               and counted()):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return len(read_jsonl(recorded))

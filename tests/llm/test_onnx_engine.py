"""The onnxruntime-genai chat engine: the real bundled model through ``stream_chat``, and the
ONNX build's cache (reused, rebuilt when the source changes, rebuilt when corrupted) on a tiny
Llama model built by the real model builder."""

from core.chat import build_messages
from core.llm import onnx_engine
from core.llm.generate import GenerationOptions, GenerationStats, stream_chat
from core.llm.loader import load_llm

import json
import shutil
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

STORY = build_messages("Write a long story about a cat.", [])


@pytest.fixture(scope="module")
def lean(smollm):
    llm = load_llm(smollm.spec, need_model=False)
    assert llm.onnx is not None and llm.model is None, llm.engine
    return llm


def test_the_default_model_runs_on_the_onnx_engine(smollm, lean):
    assert smollm.onnx is not None and "onnxruntime-genai" in smollm.engine
    stats = GenerationStats()
    answer = "".join(stream_chat(lean, build_messages("What is the capital of France?", []),
                                 GenerationOptions(max_new_tokens=24, temperature=0.0),
                                 stats=stats))
    assert "Paris" in answer and stats.extra["engine"] == "onnxruntime-genai"


def test_engine_streams_pieces_stops_and_respects_max_tokens(lean):
    stop, stats, pieces = threading.Event(), GenerationStats(), []
    for piece in stream_chat(lean, STORY, GenerationOptions(max_new_tokens=200, temperature=0.0),
                             stop=stop, stats=stats):
        pieces.append(piece)
        if len(pieces) == 3:
            stop.set()
    assert stats.stopped and len(pieces) >= 3 and stats.new_tokens < 200
    capped = GenerationStats()
    text = "".join(stream_chat(lean, STORY, GenerationOptions(max_new_tokens=7, temperature=0.7),
                               stats=capped))
    assert capped.new_tokens == 7 and text.strip()


def test_engine_gives_the_same_greedy_text_on_two_calls(lean):
    options = GenerationOptions(max_new_tokens=32, temperature=0.0, repetition_penalty=1.1)
    first, second = ("".join(stream_chat(lean, STORY, options)) for _ in range(2))
    assert first == second and len(first.split()) > 10


def _tiny_llama(folder: Path, seed: int, tokenizer_from: Path | None = None) -> None:
    """A 2-layer random Llama (with the bundled model's tokenizer files, copied once)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
    transformers.LlamaForCausalLM(config).eval().save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if tokenizer_from is not None:
            shutil.copy(tokenizer_from / name, folder / name)


def test_onnx_build_is_cached_rebuilt_on_a_new_source_and_on_a_corrupted_cache(
        smollm, tmp_path, monkeypatch):
    monkeypatch.setenv("ERT_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "tiny"
    _tiny_llama(source, 0, tokenizer_from=Path(smollm.weights_dir))
    builds = []
    real_build = onnx_engine.build
    monkeypatch.setattr(onnx_engine, "build",
                        lambda *args, **kwargs: builds.append(1) or real_build(*args, **kwargs))

    def greedy(decoder) -> list[int]:
        tokens: list[int] = []
        decoder.generate([1, 2, 3, 4], 6, min_new_tokens=6, on_token=tokens.append)
        return tokens

    assert onnx_engine.needs_build(source)
    first = onnx_engine.load(source, threads=1)
    assert first is not None and len(builds) == 1 and not onnx_engine.needs_build(source)
    manifest = json.loads((onnx_engine.engine_dir(source) / onnx_engine.MANIFEST).read_text())
    assert manifest["precision"] == onnx_engine.PRECISION and manifest["builder"]
    assert len(manifest["source_sha256"]) == 64
    before = greedy(first)
    assert len(before) == 6

    (source / "config.json").touch()  # same content, new time: re-hashed, not rebuilt
    assert onnx_engine.load(source, threads=1) is not None and len(builds) == 1

    _tiny_llama(source, 1)  # new weights: rebuilt
    assert onnx_engine.needs_build(source)
    second = onnx_engine.load(source, threads=1)
    assert second is not None and len(builds) == 2 and greedy(second) != before

    (onnx_engine.engine_dir(source) / "model.onnx").write_bytes(b"not an onnx model")
    third = onnx_engine.load(source, threads=1)
    assert third is not None and len(builds) == 3 and greedy(third) == greedy(second)

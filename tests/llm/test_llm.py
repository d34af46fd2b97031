"""The chat LLM: registry, offline errors, and the real bundled model end to end."""

from core.chat import build_messages
from core.hub import ModelUnavailableError
from core.llm.generate import GenerationOptions, GenerationStats, stream_chat
from core.llm.loader import gpu_unavailable_reason, load_llm
from core.llm.registry import LLMSpec, RegistryError, load_registry

import threading

import pytest

GREEDY = GenerationOptions(max_new_tokens=24, temperature=0.0)


def test_registry_ships_the_bundled_default_without_remote_code():
    registry = load_registry()
    spec = registry.get()
    assert spec.is_bundled and spec.gguf_file
    assert not any(m.trust_remote_code for m in registry.models.values())


def test_registry_errors_name_the_file(tmp_path):
    bad = tmp_path / "llm.toml"
    bad.write_text('[models.x]\nlabel = "no source"\n')
    with pytest.raises(RegistryError, match="needs a 'source'"):
        load_registry(bad)
    bad.write_text("not = [toml")
    with pytest.raises(RegistryError, match=str(bad)):
        load_registry(bad)
    with pytest.raises(RegistryError, match="unknown chat model"):
        load_registry().get("nope")


def test_uncached_hub_model_says_the_hub_is_unreachable():
    spec = LLMSpec(key="t", source="ert-tests/definitely-not-cached-model")
    with pytest.raises(ModelUnavailableError, match="not in the local cache, and the hub is "
                                                    "unreachable"):
        load_llm(spec)


def test_a_cpu_build_of_torch_is_told_without_importing_torch():
    """Every page's sidebar asks; importing torch for it cost seconds of a page's opening."""
    import subprocess
    import sys
    from importlib.metadata import version

    if "+cpu" not in version("torch"):
        pytest.skip("not a CPU build of torch")
    code = ("import sys; from core.llm.loader import gpu_unavailable_reason as why; "
            "print(why()); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["this torch build has no CUDA support (CPU build)", "False"]


def test_gpu_mode_explains_why_it_is_unavailable_here():
    assert "CUDA" in (gpu_unavailable_reason() or "CUDA")
    with pytest.raises(ModelUnavailableError, match="GPU mode is not available"):
        if gpu_unavailable_reason():
            load_llm(load_registry().get(), device="cuda")
        else:
            raise ModelUnavailableError("GPU mode is not available (skipped: a GPU is present)")


def _answer(llm, question, options=GREEDY, stop=None, stats=None):
    return "".join(stream_chat(llm, build_messages(question, []), options, stop=stop,
                               stats=stats))


@pytest.mark.slow
def test_bundled_llm_answers_paris(smollm):
    stats = GenerationStats()
    answer = _answer(smollm, "What is the capital of France?", stats=stats)
    assert "Paris" in answer
    assert stats.new_tokens > 0 and stats.tokens_per_second > 0
    # Its load time is recorded (how long it takes, first conversion and ONNX build
    # included, is a benchmark's figure: bench chat_engine, not a unit test's).
    assert smollm.load_seconds > 0


@pytest.mark.slow
def test_stream_yields_pieces_and_stop_ends_early(smollm):
    stop = threading.Event()
    stats = GenerationStats()
    pieces = []
    for piece in stream_chat(smollm, build_messages("Write a long story about a cat.", []),
                             GenerationOptions(max_new_tokens=200, temperature=0.0),
                             stop=stop, stats=stats):
        pieces.append(piece)
        if len(pieces) == 3:
            stop.set()
    assert stats.stopped
    assert len(pieces) >= 3 and stats.new_tokens < 200


@pytest.mark.slow
def test_two_sessions_generating_at_once_both_finish(smollm):
    expected = _answer(smollm, "What is the capital of France?")
    results: dict[int, str] = {}

    def run(i: int) -> None:
        results[i] = _answer(smollm, "What is the capital of France?")

    workers = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    assert results == {0: expected, 1: expected}


@pytest.mark.slow
def test_real_embeddings_and_faiss_find_the_uploaded_fact(embedder, tmp_path):
    from core.rag.documents import read_document
    from core.rag.store import Collection

    col = Collection("facts", root=tmp_path)
    col.add_document(read_document("lab.md", b"The ERT test lab is in Grenoble. "
                                             b"Its director is Amandine Roux."), embedder)
    col.add_document(read_document("cooking.txt", b"Boil pasta for ten minutes in salted water."),
                     embedder)
    hits = col.search("Who directs the ERT lab?", embedder, k=2)
    assert hits[0].chunk.source == "lab.md"
    assert hits[0].score > 0.3
    assert all(h.chunk.source != "cooking.txt" for h in hits)

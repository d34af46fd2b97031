from core import system
from core.asr import AsrModelSpec, AsrRegistryError, create_backend, load_asr_registry
from core.asr.faster_whisper_backend import FasterWhisperBackend
from core.asr.memory import estimate, need_gb, published_params
from core.asr.transformers_backend import TransformersBackend
from core.asr.windows import split

import subprocess
import sys
from pathlib import Path

import pytest

SEED_SOURCES = {
    "whisper:tiny": "openai/whisper-tiny",
    "whisper:base": "openai/whisper-base",
    "whisper:small": "openai/whisper-small",
    "whisper:medium": "openai/whisper-medium",
    "whisper:large": "openai/whisper-large",
    "whisper:large-v3": "openai/whisper-large-v3",
    "wav2vec2:xlsr-53-french": "facebook/wav2vec2-large-xlsr-53-french",
    "wav2vec2:bhuang-french": "bhuang/asr-wav2vec2-french",
    "wav2vec2:jonatasgrosman-xlsr": "jonatasgrosman/wav2vec2-large-xlsr-53-french",
    "wav2vec2:jonatasgrosman-voxpopuli": "jonatasgrosman/wav2vec2-large-fr-voxpopuli-french",
    "wav2vec2:wasertech-cv9": "wasertech/wav2vec2-cv-fr-9",
    "seamless:medium": "facebook/hf-seamless-m4t-medium",
    "seamless:large": "facebook/seamless-m4t-v2-large",
    "gemma3n:e2b": "google/gemma-3n-E2B-it",
    "gemma3n:e4b": "google/gemma-3n-E4B-it",
    "faster-whisper:tiny.en": "bundled:faster-whisper-tiny.en",
    "faster-whisper:base": "bundled:faster-whisper-base",
}
SEED_BATCHES = {
    "batch_1_light": ["whisper:tiny", "whisper:base", "whisper:small"],
    "batch_2_medium": ["whisper:medium", "wav2vec2:xlsr-53-french", "wav2vec2:bhuang-french"],
    "batch_3_heavy": ["whisper:large", "whisper:large-v3"],
    "batch_4_wav2vec": ["wav2vec2:jonatasgrosman-xlsr", "wav2vec2:jonatasgrosman-voxpopuli",
                        "wav2vec2:wasertech-cv9"],
    "batch_5_seamless": ["seamless:medium", "seamless:large"],
    "batch_6_gemma": ["gemma3n:e2b", "gemma3n:e4b"],
}


@pytest.fixture(scope="module")
def registry():
    return load_asr_registry()


def test_every_seed_model_is_registered_with_its_source_and_family(registry):
    for key, source in SEED_SOURCES.items():
        spec = registry.get(key)
        assert spec.source == source
        expected_family = "whisper" if key.startswith("faster-whisper") else key.split(":")[0]
        assert spec.family == expected_family
        assert spec.backend == ("faster-whisper" if source.startswith("bundled:")
                                else "transformers")
        assert spec.languages and not spec.trust_remote_code
    assert registry.get("wav2vec2:bhuang-french").supports("fr")
    assert not registry.get("faster-whisper:tiny.en").supports("fr")


@pytest.mark.slow
def test_the_default_model_works_offline(registry, monkeypatch):
    """The default model loads and transcribes speech with every connection refused
    (an attempt that something swallowed still fails the test)."""
    from core.asr import DecodeOptions
    from core.demo_data import synthesize

    import socket

    speech = synthesize("the quick brown fox jumps over the lazy dog", "en")
    attempts = []

    def no_network(*args, **kwargs):
        attempts.append((args, kwargs))
        raise OSError("the network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    backend = create_backend(registry.get(), "cpu")
    with backend:
        (out,) = backend.transcribe([speech], DecodeOptions(language="en"))
    assert out.ok, out.error
    assert {"quick", "fox", "lazy"} <= set(out.text.lower().replace(".", "").split()), out.text
    assert attempts == []


def test_seed_batches_are_parsed_and_reference_known_models(registry):
    for name, keys in SEED_BATCHES.items():
        assert list(registry.batches[name]) == keys
    for keys in registry.batches.values():
        assert all(key in registry.models for key in keys)
    assert [s.key for s in registry.batch("batch_3_heavy")] == SEED_BATCHES["batch_3_heavy"]


@pytest.fixture
def no_bf16_cpu(monkeypatch):
    """A CPU without native bf16: transformers models then load (and are budgeted) in fp32."""
    monkeypatch.setattr(system, "cpu_flags", lambda: frozenset({"avx2"}))


def test_memory_figures_are_positive_and_ordered_by_size(registry, no_bf16_cpu):
    cpu = {key: need_gb(spec, "cpu") for key, spec in registry.models.items()}
    gpu = {key: need_gb(spec, "cuda") for key, spec in registry.models.items()}
    assert all(v > 0 for v in [*cpu.values(), *gpu.values()])
    order = ["whisper:tiny", "whisper:base", "whisper:small", "whisper:medium", "whisper:large-v3"]
    assert [cpu[k] for k in order] == sorted(cpu[k] for k in order)
    assert gpu["whisper:tiny"] < gpu["whisper:large-v3"]
    assert cpu["gemma3n:e2b"] < cpu["gemma3n:e4b"]
    assert cpu["seamless:medium"] < cpu["seamless:large"]
    # int8 on the CPU is four times lighter than fp32 for the same weights.
    fw = estimate(registry.get("faster-whisper:base"), "cpu")
    hf = estimate(registry.get("whisper:base"), "cpu")
    assert fw.dtype == "int8" and hf.dtype == "float32"
    assert fw.weights_gb == pytest.approx(hf.weights_gb / 4)
    large = registry.get("whisper:large-v3")
    one, eight = estimate(large, "cpu", batch_size=1), estimate(large, "cpu", batch_size=8)
    assert one.total_gb < eight.total_gb
    assert 5.5 < estimate(large, "cpu").weights_gb < 6.5  # 1550M × 4 bytes


def test_a_local_fine_tune_is_one_entry_and_its_size_comes_from_its_config(tmp_path):
    from transformers import WhisperConfig

    folder = tmp_path / "my-whisper"
    WhisperConfig(d_model=64, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                  decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                  vocab_size=1000, pad_token_id=0, bos_token_id=0, eos_token_id=0,
                  decoder_start_token_id=1).save_pretrained(folder)
    toml = tmp_path / "asr.toml"
    toml.write_text(f'[models."whisper:mine"]\nsource = "{folder}"\n'
                    '[models."wav2vec2:big"]\nsource = "x/y"\nmemory_gb_cpu = 3.5\n'
                    '[batches]\nmine = ["whisper:mine", "wav2vec2:big"]\n')
    registry = load_asr_registry(toml)
    spec = registry.get("whisper:mine")
    assert (spec.family, spec.backend) == ("whisper", "transformers")
    memory = estimate(spec, "cpu")
    assert memory.params_from == "config"
    assert memory.params < 1_000_000  # the tiny config, not whisper-base's 74M
    assert need_gb(registry.get("wav2vec2:big"), "cpu") == 3.5
    assert estimate(registry.get("wav2vec2:big"), "cuda").params_from == "published"


def test_published_counts_match_sizes_in_keys_and_sources():
    def spec(key: str, source: str, family: str) -> AsrModelSpec:
        return AsrModelSpec(key=key, source=source, family=family)

    assert published_params(spec("whisper:x", "openai/whisper-medium", "whisper")) == 769e6
    assert published_params(spec("faster-whisper:tiny.en", "bundled:x", "whisper")) == 39e6
    assert published_params(spec("gemma3n:e2b", "google/gemma-3n-E2B-it", "gemma3n")) == 5418e6
    assert published_params(spec("wav2vec2:fr", "someone/fr-model", "wav2vec2")) == 315e6
    assert estimate(AsrModelSpec("w:x", "a/b", params_millions=10)).params == 10_000_000


@pytest.mark.parametrize("body, message", [
    ('[models."whisper:a"]\nlabel = "no source"\n', "needs a 'source'"),
    ('[models."whisper:a"]\nsource = "a/b"\ncolour = 1\n', "unknown fields"),
    ('[models."whisper:a"]\nsource = "a/b"\nbackend = "onnx"\n', "backend must be"),
    ('[models."x:a"]\nsource = "a/b"\nfamily = "hubert"\n', "family must be"),
    ('[models."whisper:a"]\nsource = "a/b"\n[batches]\nb = ["whisper:zz"]\n', "unknown models"),
    ('[models."whisper:a"]\nsource = "a/b"\nmemory_gb_cpu = -1\n', "positive"),
    ('[models."whisper:a"]\nsource = "a/b"\ndtype = "float16"\n', "dtype must be one of"),
    ('[models."faster-whisper:a"]\nsource = "a/b"\ndtype = "float32"\n',
     "dtype applies to transformers models only"),
    ('[models."whisper:a"\n', "cannot read"),
    ('[models]\n"whisper:a" = "a/b"\n', "must be a table"),
    ('default = "zz"\n[models."whisper:a"]\nsource = "a/b"\n', "default 'zz' is not one"),
    ('default = "zz"\n', "lists no"),
])
def test_a_wrong_registry_file_is_refused_with_its_name(tmp_path, body, message):
    toml = tmp_path / "bad.toml"
    toml.write_text(body)
    with pytest.raises(AsrRegistryError, match=message) as info:
        load_asr_registry(toml)
    if "cannot read" not in message:
        assert str(toml) in str(info.value)


def test_create_backend_picks_the_engine_without_loading(registry):
    fw = create_backend(registry.get("faster-whisper:tiny.en"))
    hf = create_backend(registry.get("whisper:large-v3"), device="cuda")
    assert isinstance(fw, FasterWhisperBackend) and isinstance(hf, TransformersBackend)
    assert not fw.loaded and not hf.loaded and hf.device == "cuda"


def test_the_registry_imports_without_torch():
    import subprocess

    code = ("import sys, core; from core.asr import load_asr_registry; load_asr_registry(); "
            "print('torch' in sys.modules, 'streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_memory_estimate_and_the_plan_use_what_the_backend_class_declares(monkeypatch,
                                                                             no_bf16_cpu):
    from core.evaluation.planner import LOAD_SECONDS_PER_GB, estimate_model_seconds

    spec = AsrModelSpec("whisper:base", "openai/whisper-base", params_millions=100)
    memory = estimate(spec, "cpu")
    monkeypatch.setattr(TransformersBackend, "activation_floor_gb", 1.5)
    monkeypatch.setattr(TransformersBackend, "weight_dtypes", {"cpu": "int8", "cuda": "int8"})
    monkeypatch.setattr(TransformersBackend, "rtfx_prior", {"cpu": 2.0, "cuda": 50.0})
    changed = estimate(spec, "cpu")
    assert changed.dtype == "int8" and changed.weights_gb == pytest.approx(memory.weights_gb / 4)
    assert changed.activations_gb == pytest.approx(memory.activations_gb - 0.07 + 1.5)
    # 100M parameters at a prior of 2 audio seconds per second: 600 s of audio take 300 s.
    load = LOAD_SECONDS_PER_GB * changed.weights_gb
    assert estimate_model_seconds(spec, "cpu", 600.0)[0] == pytest.approx(load + 300.0)


def test_a_backend_is_one_line_of_the_factory_and_the_registry_accepts_it(monkeypatch, tmp_path):
    from core.asr import factory
    from core.asr.endpoint_backend import EndpointBackend
    from core.evaluation.planner import estimate_model_seconds

    monkeypatch.setitem(factory.BACKENDS, "served", "core.asr.endpoint_backend:EndpointBackend")
    monkeypatch.setattr(EndpointBackend, "rtfx_prior", {"cpu": 40.0, "cuda": 40.0})
    toml = tmp_path / "asr.toml"
    toml.write_text('[models."whisper:remote"]\nsource = "http://localhost:9/v1"\n'
                    'backend = "served"\n')
    spec = load_asr_registry(toml).get()
    assert isinstance(create_backend(spec), EndpointBackend)
    assert estimate(spec, "cpu").weights_gb == 0  # remote: no weights in this process
    assert estimate_model_seconds(spec, "cpu", 400.0)[0] == pytest.approx(10.0)  # not size-scaled


def test_reading_the_registry_imports_no_engine():
    """The registry checks each entry against what its backend class declares (families,
    dtypes), so the backend modules are imported; their engines are not (pages read the
    registry on every open)."""
    import subprocess

    engines = ("torch", "transformers", "ctranslate2", "faster_whisper", "onnxruntime")
    code = ("import sys; from core.asr.registry import load_asr_registry; load_asr_registry(); "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {engines!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_windows_tile_a_long_clip_exactly_once():
    for length, window, stride in [(10, 20, 0), (100, 30, 0), (1000, 300, 50), (301, 300, 50)]:
        spans = split(length, window, stride)
        kept = [i for s in spans for i in range(s.start + s.left, s.end - s.right)]
        assert kept == list(range(length))
        assert all(s.size <= window for s in spans)
    with pytest.raises(ValueError):
        split(100, 20, 10)


def test_the_registry_file_shows_how_to_add_a_fine_tuned_folder(registry):
    text = registry.path.read_text()
    example = text.split('# [models."whisper:gilbert-l3-fr"]')[1].split("\n\n")[0]
    assert "# source = " in example and "backend" not in example  # the defaults suffice


def test_estimates_follow_the_datasets_clip_length():
    from core.asr.memory import length_factor

    whisper = AsrModelSpec("whisper:x", "org/whisper-small", params_millions=244, dtype="float32")
    ctc = AsrModelSpec("wav2vec2:x", "org/wav2vec2-large", family="wav2vec2", params_millions=315,
                       dtype="float32")
    for spec in (whisper, ctc):
        unknown, window = need_gb(spec, "cpu"), need_gb(spec, "cpu", clip_seconds=30.0)
        short = need_gb(spec, "cpu", clip_seconds=4.0)
        assert unknown == window == need_gb(spec, "cpu", clip_seconds=90.0)  # 30 s windows
        assert short < window
        # Weights do not shrink with the clips; only the activation allowance does.
        assert short > estimate(spec, "cpu").weights_gb
    # A CTC model's activations follow the audio; Whisper's 30 s window keeps a share fixed.
    assert length_factor("wav2vec2", 3.0) == pytest.approx(0.1)
    assert 0.35 < length_factor("whisper", 3.0) < 0.5
    assert length_factor("whisper", None) == 1.0


@pytest.mark.parametrize("key, config", [("gemma3n:e2b", "e2b"), ("gemma3n:e4b", "e4b")])
def test_gemma3n_registry_needs_follow_the_real_shapes_in_the_dtype_it_loads(
        tmp_path, key, config):
    """The registry's count (no weights here) against the real config built on ``meta``,
    and the weights in the dtype ERT loads: bf16 on a GPU, fp32 or bf16 on a CPU."""
    from core.asr.dtype import load_dtype
    from core.asr.memory import BYTES_PER_DTYPE, GB, params_from_config
    from core.asr.registry import load_asr_registry

    import shutil

    registered = load_asr_registry().get(key)  # the shipped entry, source on the hub
    folder = tmp_path / config
    folder.mkdir()
    shutil.copy(Path(__file__).parent / "data" / "gemma3n" / f"{config}.json",
                folder / "config.json")
    counted = params_from_config(folder, "gemma3n")
    assert counted is not None  # timm built the MobileNetV5 tower on meta
    published = estimate(registered, "cpu").params
    assert estimate(registered, "cpu").params_from == "published"
    assert abs(published - counted) / counted < 0.001
    gpu = estimate(registered, "cuda")
    assert gpu.dtype == "bfloat16" and gpu.weights_gb == pytest.approx(counted * 2 / GB, rel=1e-3)
    cpu = estimate(registered, "cpu")
    assert cpu.dtype == load_dtype(registered, "cpu") in ("float32", "bfloat16")
    assert cpu.weights_gb == pytest.approx(counted * BYTES_PER_DTYPE[cpu.dtype] / GB, rel=1e-3)
    assert gpu.total_gb > gpu.weights_gb  # activations and the CUDA context on top


@pytest.mark.parametrize("key, device, batch, measured_gb", [
    ("gemma3n:e2b", "cpu", 1, 0.253), ("gemma3n:e4b", "cpu", 1, 0.299),
    ("gemma3n:e2b", "cuda", 8, 2.432), ("gemma3n:e4b", "cuda", 8, 2.436)])
def test_gemma3n_activation_allowance_covers_what_the_real_shapes_took(
        key, device, batch, measured_gb):
    """BENCHMARKS.md "Gemma 3n": above the bf16 weights of the real shapes, one 30 s clip × 8
    new tokens on the CPU (RSS), 8 clips × 128 tokens on an H200 (the allocator's peak, so
    without the CUDA context the estimate adds)."""
    from core.asr.memory import CUDA_CONTEXT_GB
    from core.asr.registry import load_asr_registry

    spec = load_asr_registry().get(key)
    allowance = estimate(spec, device, batch_size=batch, dtype="bfloat16",
                         clip_seconds=30.0).activations_gb
    allowance -= CUDA_CONTEXT_GB if device == "cuda" else 0.0
    assert measured_gb <= allowance <= 1.5 * measured_gb  # covers it, without waste


def test_a_saved_model_is_counted_from_its_weights_without_importing_transformers(tmp_path):
    """The planner reads the safetensors headers (what will be loaded) instead of importing
    transformers to build the model on ``meta``: the same count, seconds sooner."""
    from core.asr.memory import params_from_config, params_from_weights

    from tests import tiny_models

    whisper = tiny_models.build_whisper(tmp_path / "whisper")
    ctc = tiny_models.build_wav2vec2(tmp_path / "ctc")
    assert params_from_weights(whisper) == params_from_config(whisper, "whisper")
    assert params_from_weights(ctc) == params_from_config(ctc, "wav2vec2")
    toml = tmp_path / "asr.toml"
    toml.write_text(f'[models."whisper:mine"]\nsource = "{whisper}"\n')
    code = ("import sys, core; from pathlib import Path; "
            "from core.asr.registry import load_asr_registry; from core.asr.memory import "
            f"estimate; m = estimate(load_asr_registry(Path({str(toml)!r})).get('whisper:mine'),"
            " 'cpu'); print(m.params_from, m.params, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["weights", str(params_from_weights(whisper)), "False"]


def test_sharded_weights_are_summed_and_a_broken_file_falls_back(tmp_path):
    from core.asr.memory import params_from_weights

    import json

    import numpy as np
    from safetensors.numpy import save_file

    save_file({"a": np.zeros((3, 4), np.float32)}, str(tmp_path / "part-1.safetensors"))
    save_file({"b": np.zeros(5, np.float16), "c": np.zeros((2, 2, 2), np.float32)},
              str(tmp_path / "part-2.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "part-1.safetensors", "b": "part-2.safetensors", "c": "part-2.safetensors"}}))
    assert params_from_weights(tmp_path) == 12 + 5 + 8
    (tmp_path / "part-2.safetensors").write_bytes(b"\xff" * 16)
    assert params_from_weights(tmp_path) is None  # the planner then builds it on meta
    assert params_from_weights(tmp_path / "nowhere") is None
    for name, data in (("empty", b""), ("huge", (2**40).to_bytes(8, "little") + b"{}")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(data)  # no header, or absurd one
        assert params_from_weights(tmp_path / name) is None

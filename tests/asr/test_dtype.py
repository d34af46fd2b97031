"""The weights' dtype: bf16 where it is fast (AMX) or the only fit, overridable, and the plan
follows the load.

The CPU's flags are faked both ways, so every check holds on any machine; the tiny
random-weight models really load and decode in bf16 (natively where the CPU has it).
"""

from __future__ import annotations

from core import system
from core.asr import AsrModelSpec, DecodeOptions, create_backend, load_asr_registry
from core.asr.dtype import load_dtype
from core.asr.memory import estimate, need_gb
from core.asr.registry import AsrRegistryError

import difflib
import json

import numpy as np
import pytest

from tests.tiny_models import build_wav2vec2, build_whisper, noise_clips

WHISPER = AsrModelSpec("whisper:x", "openai/whisper-small", params_millions=244)
FASTER = AsrModelSpec("faster-whisper:x", "bundled:faster-whisper-base",
                      backend="faster-whisper")
ENDPOINT = AsrModelSpec("whisper:served", "http://localhost:9/v1", backend="endpoint")


@pytest.fixture
def bf16_cpu(monkeypatch):
    monkeypatch.setattr(system, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))


@pytest.fixture
def amx_cpu(monkeypatch):
    monkeypatch.setattr(system, "cpu_flags",
                        lambda: frozenset({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}))


@pytest.fixture
def fp32_cpu(monkeypatch):
    monkeypatch.setattr(system, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))


def test_bf16_is_detected_from_the_cpu_flags():
    assert system.cpu_has_bf16(frozenset({"avx512_bf16"}))
    assert system.cpu_has_bf16(frozenset({"amx_bf16", "amx_tile"}))
    assert not system.cpu_has_bf16(frozenset({"avx2", "avx512f", "fma"}))
    assert not system.cpu_has_bf16(frozenset())
    assert system.cpu_flags() is system.cpu_flags()  # read once


def test_auto_is_bf16_only_where_bf16_is_also_fast(amx_cpu, monkeypatch):
    assert load_dtype(WHISPER, "cpu") == "bfloat16"  # AMX: half the memory, and faster
    assert load_dtype(WHISPER, "cuda:0") == "bfloat16"
    # avx512_bf16 without AMX: bf16 ran at 0.7-0.8x fp32 here, so auto keeps fp32 ...
    monkeypatch.setattr(system, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert load_dtype(WHISPER, "cpu") == "float32"
    monkeypatch.setattr(system, "cpu_flags", lambda: frozenset({"avx2"}))
    assert load_dtype(WHISPER, "cpu") == "float32"
    assert load_dtype(WHISPER, "cuda") == "bfloat16"  # the GPU's own check decides fp16


@pytest.mark.parametrize("flags", ["bf16_cpu", "fp32_cpu"])
def test_faster_whisper_and_endpoints_keep_their_own_types(flags, request):
    request.getfixturevalue(flags)
    for requested in ("auto", "float32", "bfloat16"):
        assert load_dtype(FASTER, "cpu", requested) == "int8"
        assert load_dtype(FASTER, "cuda", requested) == "float16"
        assert load_dtype(ENDPOINT, "cpu", requested) == "remote"


def test_the_run_flag_wins_over_the_registry_field_which_wins_over_auto(amx_cpu):
    pinned = AsrModelSpec("whisper:x", "a/b", dtype="float32")
    assert load_dtype(pinned, "cpu") == "float32"  # the field over auto's bf16
    assert load_dtype(pinned, "cpu", "bfloat16") == "bfloat16"  # the flag over the field
    assert load_dtype(AsrModelSpec("w:x", "a/b", dtype="bfloat16"), "cpu", "float32") == "float32"
    assert load_dtype(WHISPER, "cuda", "float32") == "float32"
    with pytest.raises(ValueError, match="dtype must be one of"):
        load_dtype(WHISPER, "cpu", "float16")


def test_an_entry_may_ask_for_bf16_even_where_auto_would_not(fp32_cpu):
    assert load_dtype(AsrModelSpec("w:x", "a/b", dtype="bfloat16"), "cpu") == "bfloat16"


def test_the_registry_reads_the_field(tmp_path):
    toml = tmp_path / "asr.toml"
    toml.write_text('[models."whisper:a"]\nsource = "a/b"\ndtype = "float32"\n'
                    '[models."whisper:b"]\nsource = "a/c"\n')
    registry = load_asr_registry(toml)
    assert registry.get("whisper:a").dtype == "float32"
    assert registry.get("whisper:b").dtype == "auto"
    toml.write_text('[models."whisper:a"]\nsource = "a/b"\ndtype = "int8"\n')
    with pytest.raises(AsrRegistryError, match="dtype must be one of"):
        load_asr_registry(toml)


def test_bf16_halves_the_weights_and_the_activations_follow(amx_cpu):
    fp32, bf16 = estimate(WHISPER, "cpu", dtype="float32"), estimate(WHISPER, "cpu")
    assert (fp32.dtype, bf16.dtype) == ("float32", "bfloat16")
    assert bf16.weights_gb == pytest.approx(fp32.weights_gb / 2)
    floor = 0.07  # TransformersBackend.activation_floor_gb: a batch's cost whatever the size
    assert bf16.activations_gb - floor == pytest.approx((fp32.activations_gb - floor) / 2)
    assert need_gb(WHISPER, "cpu") == pytest.approx(bf16.total_gb)
    assert estimate(FASTER, "cpu").dtype == "int8"  # untouched


def test_a_model_refused_at_fp32_is_planned_when_its_bf16_need_fits(bf16_cpu, monkeypatch,
                                                                     tmp_path):
    from core.evaluation.config import RunConfig
    from core.evaluation.planner import make_plan
    from core.evaluation.run_plan import plan_run

    registry = load_asr_registry()
    large = registry.get("whisper:large-v3")
    fp32, bf16 = need_gb(large, "cpu", dtype="float32"), need_gb(large, "cpu", dtype="bfloat16")
    assert bf16 < fp32
    budget = (bf16 + fp32) / 2
    machine = system.read_machine()
    assert need_gb(large, "cpu") == fp32  # ... so auto plans fp32 where it fits
    plan = make_plan([large], machine, budget_gb=budget)
    assert plan.models == ["whisper:large-v3"] and not plan.refused
    need = plan.batches[0].needs[0]
    assert need.dtype == "bfloat16" and "over the budget" in need.source
    assert need.need_gb == pytest.approx(bf16)
    assert make_plan([large], machine, budget_gb=fp32 + 1).batches[0].needs[0].dtype == \
        "float32"  # fits in fp32: the faster dtype here
    plan = make_plan([large], machine, budget_gb=budget, dtype="float32")
    assert not plan.batches and "whisper:large-v3" in plan.refused[0].model
    # The run's flag reaches the planner through its config.
    config = RunConfig(dataset="unused", models=["whisper:large-v3"], budget_gb=budget,
                       out_dir=str(tmp_path))
    assert plan_run(config, registry).models == ["whisper:large-v3"]
    config.dtype = "float32"
    assert plan_run(config, registry).refused
    # And on a CPU without bf16, auto is fp32 again: refused.
    monkeypatch.setattr(system, "cpu_flags", lambda: frozenset())
    assert make_plan([large], machine, budget_gb=budget).refused


def test_the_cli_flag_reaches_the_run_config(tmp_path):
    from core.cli import build_parser
    from core.evaluation.commands import _config

    manifest = tmp_path / "m.jsonl"
    manifest.write_text("")
    for argv, expected in ((["evaluate"], "auto"), (["evaluate", "--dtype", "float32"],
                                                    "float32"),
                           (["analyze", "--dtype", "bfloat16"], "bfloat16")):
        args = build_parser().parse_args([*argv, "--dataset", str(manifest)])
        assert _config(args, ["whisper:tiny"], []).dtype == expected
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--dtype", "float16"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-dtype")
    return {"whisper": build_whisper(root / "whisper"), "wav2vec2": build_wav2vec2(root / "w2v")}


@pytest.mark.parametrize("family", ["whisper", "wav2vec2"])
def test_tiny_models_load_and_transcribe_in_bf16(family, tiny, amx_cpu):
    import torch

    spec = AsrModelSpec(f"{family}:tiny", str(tiny[family]), family=family)
    clips = noise_clips([1.5, 4.0, 7.5, 2.5], seed=7)
    options = DecodeOptions(language="fr", max_new_tokens=10, batch_size=4)
    texts = {}
    for requested in ("auto", "float32"):
        backend = create_backend(spec, "cpu", requested)
        with backend:
            assert backend.dtype == ("bfloat16" if requested == "auto" else "float32")
            assert {p.dtype for p in backend.model.parameters()} == {getattr(torch,
                                                                             backend.dtype)}
            out = backend.transcribe(clips, options)
        assert backend.dtype is None  # freed
        assert all(t.ok and isinstance(t.text, str) for t in out)
        texts[requested] = [t.text for t in out]
    # Random weights sit near ties, so bf16 may pick other tokens: reported, not asserted.
    pairs = list(zip(texts["auto"], texts["float32"], strict=True))
    same = sum(a == b for a, b in pairs)
    chars = np.mean([difflib.SequenceMatcher(None, a, b).ratio() for a, b in pairs])
    print(f"\n{family}: bf16 and fp32 transcripts identical for {same} of {len(clips)} clips, "
          f"{100 * chars:.0f} % character similarity")


def test_the_run_records_the_dtype_each_model_loaded_in(tiny, amx_cpu, tmp_path):
    """Through the worker: the run's flag wins over the entry, and the record says what loaded."""
    from core.evaluation import runner
    from core.evaluation.config import RunConfig
    from core.evaluation.run_dir import RunDir
    from core.evaluation.worker import run_batch

    import soundfile

    rows = []
    for i, clip in enumerate(noise_clips([1.0, 2.0], seed=1)):
        soundfile.write(tmp_path / f"{i}.wav", clip, 16_000)
        rows.append({"audio_filepath": str(tmp_path / f"{i}.wav"), "text": "x", "language": "fr"})
    manifest = tmp_path / "set.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    toml = tmp_path / "asr.toml"
    toml.write_text(f'[models."whisper:tiny"]\nsource = "{tiny["whisper"]}"\n'
                    f'[models."wav2vec2:tiny"]\nsource = "{tiny["wav2vec2"]}"\n'
                    'dtype = "float32"\n')
    loaded = {}
    for requested in ("auto", "bfloat16"):
        config = RunConfig(dataset=str(manifest), models=["whisper:tiny", "wav2vec2:tiny"],
                           out_dir=str(tmp_path / "runs"), registry_path=str(toml),
                           use_cache=False, tune_batch_size=False, dtype=requested,
                           decode=DecodeOptions(max_new_tokens=5))
        run = RunDir(runner.prepare(config))
        for batch in run.read_plan().batches:
            run_batch(run.path, batch.name)
        loaded[requested] = {r["model"]: r["dtype"] for r in run.records().model_rows()}
    assert loaded["auto"] == {"whisper:tiny": "bfloat16", "wav2vec2:tiny": "float32"}
    assert loaded["bfloat16"] == {"whisper:tiny": "bfloat16", "wav2vec2:tiny": "bfloat16"}

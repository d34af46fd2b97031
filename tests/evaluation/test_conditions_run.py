"""A run over robustness conditions with real worker processes and the bundled tiny.en:
every (model, condition, clip) once across a SIGKILL and a resume, and the figures in
every result file and in `ert score`."""

from __future__ import annotations

from core.asr.base import DecodeOptions
from core.evaluation import runner
from core.evaluation.cache import cache_key
from core.evaluation.records import read_jsonl
from core.evaluation.run_dir import SAMPLES_FILE

import csv
import itertools
import json

import pytest

from tests.evaluation.conftest import kill_mid_run

CONDITIONS = ["clean", "noise:snr=10", "telephone"]
MODELS = ["faster-whisper:tiny.en", "wav2vec2:tiny-random"]


def test_two_models_by_three_conditions_each_once_after_a_sigkill_and_resume(
        bench, run_config, capsys):
    config = run_config(dataset=str(bench["eight"]), tune_batch_size=False, models=MODELS,
                        conditions=list(CONDITIONS), baseline=MODELS[0])
    config.decode.batch_size = 1
    before = kill_mid_run(config)
    samples = config.run_dir / SAMPLES_FILE
    assert 3 <= before < 48, "the kill should land mid-run"
    outcome = runner.resume(config.run_dir)
    assert not outcome.worker_failures

    lines = read_jsonl(samples)
    assert len({(r["model"], r["id"]) for r in lines}) == len(lines) == 48
    manifest = json.loads((config.run_dir / "run_manifest.json").read_text())
    clips = [i for i in manifest["sample_ids"] if "@" not in i]
    assert manifest["samples"] == 24 and len(clips) == 8
    durations = [json.loads(line)["duration"] for line in bench["eight"].read_text().splitlines()]
    assert manifest["audio_seconds"] == pytest.approx(3 * sum(durations))  # what was planned
    heard = {(r["model"], r["condition"], r["id"].split("@")[0]) for r in lines}
    assert heard == set(itertools.product(MODELS, CONDITIONS, clips))
    assert all(r["id"] == (r["id"].split("@")[0] if r["condition"] == "clean"
                           else f"{r['id'].split('@')[0]}@{r['condition']}") for r in lines)

    consolidated = json.loads(outcome.files["consolidated"].read_text())
    report = consolidated["analysis"]["conditions"]
    assert report["conditions"] == CONDITIONS
    rows = {(r["model"], r["condition"]): r for r in report["rows"]}
    assert set(rows) == set(itertools.product(MODELS, CONDITIONS))
    tiny = rows[(MODELS[0], "noise:snr=10")]
    assert tiny["samples"] == tiny["clean_pairs"] == 8 and tiny["delta_wer_ci"]
    assert rows[(MODELS[1], "telephone")]["baseline"]["model"] == MODELS[0]
    assert set(report["models"]) == set(MODELS)
    with (config.run_dir / "conditions.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 6 and {"wer_low", "delta_wer_high", "vs_baseline_verdict"} <= set(
        table[0])
    assert outcome.files["conditions_chart"].stat().st_size > 10_000
    with (config.run_dir / "samples.csv").open() as handle:
        assert {r["condition"] for r in csv.DictReader(handle)} == set(CONDITIONS)

    from core.cli import main

    capsys.readouterr()
    assert main(["score", str(config.run_dir), "--by", "condition", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    sliced = {r["value"] for r in scored["analysis"]["slices"] if r["column"] == "condition"}
    assert sliced == set(CONDITIONS)
    assert scored["analysis"]["conditions"]["rows"] == report["rows"]


def test_the_transcription_cache_key_names_the_condition_but_not_clean(bench):
    from core.asr.registry import load_asr_registry

    spec = load_asr_registry(bench["registry"]).get("faster-whisper:tiny.en")
    keys = {c: cache_key(spec, DecodeOptions(), "same-audio", "int8", c)
            for c in (None, "clean", "noise:snr=10", "telephone")}
    assert keys[None] == keys["clean"]
    assert len(set(keys.values())) == 3

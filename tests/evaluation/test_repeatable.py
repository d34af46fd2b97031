"""Issue 26: two identical runs give identical figures, and every figure says where it came
from — batch sizes replayed, the batch-invariance check, what ``--no-cache`` reads and
writes, models whose every sample is cached."""

from __future__ import annotations

from core.evaluation import runner
from core.evaluation.run_dir import RunDir
from core.evaluation.summary import invariance_label, memory_label

import json
from pathlib import Path

import pytest

from tests.tiny_models import build_wav2vec2

TINY_EN = "faster-whisper:tiny.en"


def _samples(run_dir: Path, model: str) -> dict[str, dict]:
    return {r["id"]: r for r in RunDir(run_dir).read_detailed() if r["model"] == model}


def _own_cache(monkeypatch, tmp_path: Path) -> None:
    """A transcription cache (and remembered batch sizes) of this test's own; the worker
    processes inherit the variable."""
    monkeypatch.setenv("ERT_CACHE_DIR", str(tmp_path / "cache"))


def test_two_no_cache_runs_give_identical_transcripts_and_figures(
        bench, run_config, tmp_path, monkeypatch):
    """Clips of different lengths, the tuner on: the second ``--no-cache`` run follows the
    batch sizes the first used (a batched kernel may flip a near-tie, so a size found from
    timing would make the two differ), so every clip is decoded at the same size, and the
    transcripts, WER, CER and interval are the same."""
    _own_cache(monkeypatch, tmp_path)
    durations = [json.loads(line).get("duration") for line in
                 Path(bench["eight"]).read_text().splitlines()]
    assert len(set(durations)) > 1, "clips whose lengths differ"
    runs = [runner.start(run_config(dataset=str(bench["eight"]), models=[TINY_EN],
                                    use_cache=False, run_id=f"r{i}")) for i in (1, 2)]
    first, second = (_samples(o.run_dir, TINY_EN) for o in runs)
    assert len(first) == 8 and first.keys() == second.keys()
    assert {i: r["batch_size"] for i, r in first.items()} == \
        {i: r["batch_size"] for i, r in second.items()}
    assert max(r["batch_size"] for r in first.values()) > 1, "the tuner tried batches"
    assert {i: r["hypothesis"] for i, r in first.items()} == \
        {i: r["hypothesis"] for i, r in second.items()}
    a, b = (RunDir(o.run_dir).read_summaries()[TINY_EN] for o in runs)
    assert (a.wer, a.cer, a.wer_ci, a.batch_sizes) == (b.wer, b.cer, b.wer_ci, b.batch_sizes)
    assert a.cached == b.cached == 0  # --no-cache: every sample transcribed both times
    assert (a.batch_sizes_from, b.batch_sizes_from) == ("tuned", "replayed")
    # Asked for, the sizes are tuned afresh.
    third = runner.start(run_config(dataset=str(bench["eight"]), models=[TINY_EN],
                                    use_cache=False, retune=True, run_id="r3"))
    assert RunDir(third.run_dir).read_summaries()[TINY_EN].batch_sizes_from == "tuned"


def _group_norm_wav2vec2(folder: Path) -> Path:
    """A tiny random Wav2Vec2 whose first layer normalises over the whole (padded) input
    and whose processor sends no attention mask: in a batch, every clip shorter than the
    longest is padded, and its output changes (the case built to differ)."""
    import torch
    from transformers import Wav2Vec2ForCTC

    build_wav2vec2(folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(feat_extract_norm="group", do_stable_layer_norm=False)
    (folder / "config.json").write_text(json.dumps(config))
    processor = json.loads((folder / "processor_config.json").read_text())
    processor["feature_extractor"]["return_attention_mask"] = False
    (folder / "processor_config.json").write_text(json.dumps(processor))
    torch.manual_seed(0)
    Wav2Vec2ForCTC(Wav2Vec2ForCTC.config_class.from_dict(config)).save_pretrained(folder)
    return folder


def test_batch_invariance_check_counts_the_clips_that_differ(bench, run_config, tmp_path):
    """Batches of 4 clips of different lengths: each batch's longest clip is unpadded and
    decodes as it does alone, the others are padded and (this model) differ. The check
    re-decodes them alone and counts exactly those."""
    model = _group_norm_wav2vec2(tmp_path / "w2v-group")
    registry = tmp_path / "registry.toml"
    registry.write_text(Path(bench["registry"]).read_text().split("[batches]")[0] +
                        f'[models."wav2vec2:group-norm"]\nsource = "{model}"\n')
    config = run_config(dataset=str(bench["eight"]), models=["wav2vec2:group-norm"],
                        registry_path=str(registry), tune_batch_size=False,
                        check_batch_invariance=32)
    config.decode.batch_size = 4
    outcome = runner.start(config)
    assert not outcome.worker_failures
    summary = RunDir(outcome.run_dir).read_summaries()["wav2vec2:group-norm"]
    check = summary.batch_invariance
    rows = list(_samples(outcome.run_dir, "wav2vec2:group-norm").values())
    order = [json.loads(line)["audio_filepath"] for line in
             Path(bench["eight"]).read_text().splitlines()]
    by_path = {r["audio_filepath"]: r for r in rows}
    batches = [[by_path[p] for p in order[i:i + 4]] for i in (0, 4)]
    longest = {max(batch, key=lambda r: r["duration"])["id"] for batch in batches}
    assert check["clips"] == 8 and check["at_batch"] == [4]
    assert longest.isdisjoint(check["differing"])  # unpadded: alike
    assert check["differ"] == len(check["differing"]) == 6  # every padded clip differs
    assert check["wer_batched"] is not None and check["delta_wer"] == pytest.approx(
        check["wer_batched"] - check["wer_single"], abs=1e-5)
    assert invariance_label(summary).startswith("6 of 8 clips differ at batch 4 vs 1")


def test_batch_invariance_is_off_unless_asked(bench, run_config):
    outcome = runner.start(run_config(models=["wav2vec2:tiny-random"], tune_batch_size=False))
    summary = RunDir(outcome.run_dir).read_summaries()["wav2vec2:tiny-random"]
    assert summary.batch_invariance is None and invariance_label(summary) is None


def test_no_cache_transcribes_everything_and_still_writes_the_cache(
        bench, run_config, tmp_path, monkeypatch):
    _own_cache(monkeypatch, tmp_path)
    kept = run_config(models=[TINY_EN], use_cache=False, write_cache=False, run_id="a")
    runner.start(kept)
    after_no_write = runner.start(run_config(models=[TINY_EN], use_cache=True, run_id="b"))
    summary = RunDir(after_no_write.run_dir).read_summaries()[TINY_EN]
    assert summary.cached == 0 and summary.timed == 4  # --no-cache-write left it empty
    # Run "b" wrote its transcripts; --no-cache reads none of them, and writes anew.
    fresh = runner.start(run_config(models=[TINY_EN], use_cache=False, run_id="c"))
    assert RunDir(fresh.run_dir).read_summaries()[TINY_EN].timed == 4
    # A fully cached model is not loaded: no memory of its own, and it says why.
    cached = runner.start(run_config(models=[TINY_EN], use_cache=True, run_id="d"))
    summary = RunDir(cached.run_dir).read_summaries()[TINY_EN]
    assert summary.cached == 4 and summary.timed == 0 and summary.wer is not None
    assert not summary.loaded and summary.load_seconds is None
    assert summary.measured_gb is None
    assert memory_label(summary) == "not loaded: every sample cached"
    (part,) = [p for p in json.loads((cached.run_dir / "run_manifest.json").read_text())
               ["parts"] if p["model"] == TINY_EN]
    assert part["loaded"] is False and part["status"] == "ok"

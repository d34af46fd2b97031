"""The espeak-ng demo dataset: generated, loaded back, reused, and its CLI."""

from __future__ import annotations

from core import demo_data
from core.audio import load_audio_with_info
from core.cli import main
from core.datasets import load_dataset_spec

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng is installed by `make setup`")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_data.make_demo_dataset(tmp_path_factory.mktemp("demo"), count=2)


def test_two_plus_two_utterances_load_back_as_a_manifest(demo: Path) -> None:
    samples = load_dataset_spec(str(demo))
    assert [(s.id, s.language) for s in samples] == [
        ("en_000", "en"), ("en_001", "en"), ("fr_000", "fr"), ("fr_001", "fr")]
    assert samples[2].text == demo_data.SENTENCES["fr"][0]
    for sample in samples:
        audio, info = load_audio_with_info(sample.audio_filepath)
        assert info.sample_rate == 16_000 and info.channels == 1
        assert 3.0 <= sample.duration <= 10.0
        assert abs(len(audio) / 16_000 - sample.duration) < 0.01


def test_folder_spec_reads_the_demo_manifest(demo: Path) -> None:
    assert len(load_dataset_spec(str(demo.parent), samples=3, seed=0)) == 3


def test_rerun_reuses_the_wav_files(demo: Path) -> None:
    wavs = sorted((demo.parent / "audio").glob("*.wav"))
    stamps = [w.stat().st_mtime_ns for w in wavs]
    assert demo_data.make_demo_dataset(demo.parent, count=2) == demo
    assert [w.stat().st_mtime_ns for w in wavs] == stamps


def test_manifest_lists_only_the_requested_languages(demo: Path) -> None:
    manifest = demo_data.make_demo_dataset(demo.parent, langs=("fr",), count=1)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [row["id"] for row in rows] == ["fr_000"]
    demo_data.make_demo_dataset(demo.parent, count=2)  # restore for the other tests


def test_sentences_are_fixed_and_forty_per_language() -> None:
    assert {lang: len(s) for lang, s in demo_data.SENTENCES.items()} == {"en": 40, "fr": 40}
    assert len(set(demo_data.SENTENCES["fr"])) == 40


def test_bad_arguments_and_missing_espeak_are_clear(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(demo_data.DemoDataError, match="unknown demo language"):
        demo_data.make_demo_dataset(tmp_path, langs=("de",))
    with pytest.raises(demo_data.DemoDataError, match="between 1 and 40"):
        demo_data.make_demo_dataset(tmp_path, count=41)
    monkeypatch.setattr(demo_data.shutil, "which", lambda name: None)
    with pytest.raises(demo_data.DemoDataError, match="espeak-ng is not installed"):
        demo_data.make_demo_dataset(tmp_path, count=1)


def test_cli_demo_data_writes_the_manifest(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo-data", "--out", str(tmp_path), "--lang", "fr", "--count", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "manifest.jsonl")
    assert main(["demo-data", "--out", str(tmp_path), "--count", "99"]) == 1
    assert "between 1 and 40" in capsys.readouterr().err


def test_the_default_demo_is_english_and_an_old_mixed_folder_becomes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 27: the default model, tiny.en, is English-only, so the demo a run gets by
    default (CLI and Evaluation page) is English; a ``demo-data`` folder an earlier ERT
    made with English and French is rewritten, its English audio reused."""
    from core.evaluation.commands import _ensure_dataset

    monkeypatch.setenv("ERT_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(demo_data, "SENTENCES", {k: v[:2] for k, v in
                                                 demo_data.SENTENCES.items()})
    old = demo_data.make_demo_dataset(tmp_path / "demo-data", langs=("en", "fr"))
    english = (old.parent / "audio" / "en_000.wav").stat().st_mtime_ns
    assert not demo_data.demo_ready(demo_data.DEFAULT_DEMO)
    manifest = _ensure_dataset(None)
    assert manifest == str(tmp_path / "demo-data" / "manifest.jsonl")
    assert [s.language for s in load_dataset_spec(manifest)] == ["en", "en"]
    assert (old.parent / "audio" / "en_000.wav").stat().st_mtime_ns == english
    assert demo_data.DEFAULT_DEMO.model == "faster-whisper:tiny.en"
    mixed = demo_data.find_demo("Demo: English + French")
    assert mixed is not None and mixed.model == "faster-whisper:base"
    assert {s.language for s in load_dataset_spec(str(demo_data.ensure_demo(mixed)))} == \
        {"en", "fr"}

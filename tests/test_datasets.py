"""Dataset loaders: manifests, folders, Hugging Face (offline and a local parquet set)."""

from __future__ import annotations

from core.datasets import (
    DatasetError,
    DatasetUnavailableError,
    Sample,
    dataset_label,
    language_from_config,
    load_dataset_spec,
    load_folder,
    load_manifest,
    parse_hf_spec,
    subset_indices,
)

import csv
import json
import wave
from pathlib import Path

import numpy as np
import pytest


def _tone(path: Path, seconds: float = 0.5, rate: int = 16_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    signal = 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((signal * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture
def clips(tmp_path: Path) -> list[Path]:
    return [_tone(tmp_path / "audio" / f"clip{i}.wav") for i in range(3)]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path


def test_jsonl_manifest_resolves_relative_paths_against_its_folder(tmp_path: Path,
                                                                   clips: list[Path]) -> None:
    manifest = _write_jsonl(tmp_path / "test.jsonl", [
        {"audio_filepath": "audio/clip0.wav", "text": "l'homme", "duration": 0.5,
         "language": "fr"},
        {"audio_filepath": str(clips[1]), "text": "hello"},
    ])
    samples = load_manifest(manifest)
    assert [s.audio_filepath for s in samples] == [clips[0], clips[1]]
    assert samples[0] == Sample("audio/clip0", clips[0], "l'homme", 0.5, "fr")
    assert samples[1].duration is None and samples[1].language is None
    assert samples[0].load_audio().shape == (8_000,)


def test_nemo_json_manifest_and_json_list_are_read(tmp_path: Path, clips: list[Path]) -> None:
    rows = [{"audio_filepath": "audio/clip0.wav", "text": "a", "id": "first"}]
    _write_jsonl(tmp_path / "nemo.json", rows)
    (tmp_path / "list.json").write_text(json.dumps(rows))
    assert load_manifest(tmp_path / "nemo.json")[0].id == "first"
    assert load_manifest(tmp_path / "list.json")[0].id == "first"


def test_csv_manifest_with_the_same_columns(tmp_path: Path, clips: list[Path]) -> None:
    path = tmp_path / "test.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["audio_filepath", "text", "duration", "language"])
        writer.writerow(["audio/clip0.wav", "le chat, noir", "0.5", "fr"])
        writer.writerow(["audio/clip1.wav", "", "", ""])
    samples = load_dataset_spec(str(path))
    assert [(s.text, s.duration, s.language) for s in samples] == [
        ("le chat, noir", 0.5, "fr"), ("", None, None)]


def test_bad_row_names_the_file_and_line(tmp_path: Path, clips: list[Path]) -> None:
    path = _write_jsonl(tmp_path / "bad.jsonl", [
        {"audio_filepath": "audio/clip0.wav", "text": "ok"},
        {"audio_filepath": "audio/clip1.wav", "sentence": "wrong column"},
    ])
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2: missing text"):
        load_manifest(path)


def test_invalid_json_line_names_the_line(tmp_path: Path, clips: list[Path]) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"audio_filepath": "audio/clip0.wav", "text": "a"}\n\n{not json\n')
    with pytest.raises(DatasetError, match=r"broken\.jsonl:3: invalid JSON"):
        load_manifest(path)


def test_missing_audio_and_bad_duration_are_reported(tmp_path: Path, clips: list[Path]) -> None:
    path = _write_jsonl(tmp_path / "m.jsonl", [{"audio_filepath": "gone.wav", "text": "a"}])
    with pytest.raises(DatasetError, match=r"m\.jsonl:1: audio file not found: gone\.wav"):
        load_manifest(path)
    path = tmp_path / "d.csv"
    path.write_text("audio_filepath,text,duration\naudio/clip0.wav,a,0.5\naudio/clip1.wav,b,long\n")
    with pytest.raises(DatasetError, match=r"d\.csv:3: duration 'long' is not a number"):
        load_manifest(path)


def test_folder_pairs_audio_with_same_named_txt(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    for name, text in [("a", "bonjour"), ("sub/b", "au revoir\n")]:
        _tone(root / f"{name}.wav")
        (root / f"{name}.txt").write_text(text)
    samples = load_dataset_spec(str(root))
    assert [(s.id, s.text) for s in samples] == [("a", "bonjour"), ("sub/b", "au revoir")]


def test_folder_without_transcripts_lists_them(tmp_path: Path) -> None:
    _tone(tmp_path / "lonely.wav")
    with pytest.raises(DatasetError, match="no .txt transcript for lonely.wav"):
        load_folder(tmp_path)
    (tmp_path / "silent").mkdir()
    with pytest.raises(DatasetError, match="no audio files"):
        load_folder(tmp_path / "silent")


def test_folder_with_a_manifest_uses_it(tmp_path: Path, clips: list[Path]) -> None:
    _write_jsonl(tmp_path / "manifest.jsonl", [{"audio_filepath": "audio/clip2.wav", "text": "x"}])
    assert [s.audio_filepath for s in load_dataset_spec(str(tmp_path))] == [clips[2]]


def test_samples_subset_is_reproducible_ordered_and_nested(tmp_path: Path) -> None:
    _tone(tmp_path / "a" / "x.wav")
    rows = [{"audio_filepath": "a/x.wav", "text": f"t{i}", "id": f"s{i:02d}"} for i in range(30)]
    path = _write_jsonl(tmp_path / "many.jsonl", rows)
    first = [s.id for s in load_dataset_spec(str(path), samples=8, seed=1)]
    again = [s.id for s in load_dataset_spec(str(path), samples=8, seed=1)]
    larger = [s.id for s in load_dataset_spec(str(path), samples=12, seed=1)]
    other = [s.id for s in load_dataset_spec(str(path), samples=8, seed=2)]
    assert first == again == sorted(first) and len(first) == 8
    assert set(first) <= set(larger)
    assert first != other
    assert len(load_dataset_spec(str(path), samples=100)) == 30
    with pytest.raises(DatasetError, match="positive"):
        subset_indices(30, 0)


def test_unknown_spec_explains_the_accepted_forms(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"hf:NAME\[:CONFIG\[:SPLIT\]\]"):
        load_dataset_spec(str(tmp_path / "nowhere.jsonl"))
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(DatasetError, match="not a manifest"):
        load_dataset_spec(str(tmp_path / "notes.md"))


def test_hf_spec_parsing_and_language() -> None:
    assert parse_hf_spec("hf:facebook/multilingual_librispeech:french") == (
        "facebook/multilingual_librispeech", "french", "test")
    assert parse_hf_spec("hf:google/fleurs:fr_fr:validation") == (
        "google/fleurs", "fr_fr", "validation")
    assert [language_from_config(c) for c in ("french", "fr_fr", "fr", "clean", None)] == [
        "fr", "fr", "fr", None, None]
    with pytest.raises(DatasetError):
        parse_hf_spec("hf:")


def test_dataset_label_names_the_folder_or_the_hub_set_not_the_manifest_file() -> None:
    assert dataset_label("/runs/demo-data/manifest.jsonl") == "demo-data"
    assert dataset_label("data/test.jsonl") == "data/test.jsonl"  # the file names it here
    assert dataset_label("/data/clips/") == dataset_label("/data/clips") == "clips"
    assert dataset_label("hf:facebook/multilingual_librispeech:french:test") == \
        "facebook/multilingual_librispeech (french, test)"
    assert dataset_label("hf:google/fleurs") == "google/fleurs (test)"
    assert dataset_label("hf:") == "hf:" and dataset_label(None) == ""


def test_hf_dataset_offline_gives_a_clear_error() -> None:
    with pytest.raises(DatasetUnavailableError, match="not in the local cache.*unreachable"):
        load_dataset_spec("hf:facebook/multilingual_librispeech:french:test", samples=5)


def test_hf_dataset_from_local_parquet_decodes_without_torchcodec(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real `datasets.load_dataset` path, on a parquet set written here."""
    import datasets
    from datasets import Audio, Dataset

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")

    wavs = [_tone(tmp_path / f"w{i}.wav", seconds=0.25 * (i + 1), rate=22_050) for i in range(4)]
    table = Dataset.from_dict({
        "audio": [{"bytes": w.read_bytes(), "path": w.name} for w in wavs],
        "transcript": [f"phrase {i}" for i in range(4)],
        "id": [f"utt{i}" for i in range(4)],
    }).cast_column("audio", Audio())
    (tmp_path / "set" / "data").mkdir(parents=True)
    table.to_parquet(str(tmp_path / "set" / "data" / "test-00000-of-00001.parquet"))
    samples = load_dataset_spec(f"hf:{tmp_path / 'set'}::test", samples=2, seed=0)
    assert len(samples) == 2 and all(s.audio_bytes for s in samples)
    for sample in samples:
        index = int(sample.id.removeprefix("utt"))
        assert sample.text == f"phrase {index}"
        assert len(sample.load_audio()) == pytest.approx(0.25 * (index + 1) * 16_000, abs=16)


def test_in_memory_array_sample_is_resampled() -> None:
    sample = Sample("mem", None, "x", audio=np.zeros(44_100, np.float32) + 0.1,
                    sampling_rate=44_100)
    assert abs(len(sample.load_audio()) - 16_000) <= 16

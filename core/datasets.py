"""Evaluation datasets: manifests, folders of transcribed audio, Hugging Face sets.

Every source becomes a list of :class:`Sample`. One entry point,
:func:`load_dataset_spec`, accepts what a user types (``hf:NAME[:CONFIG[:SPLIT]]``,
a ``.jsonl``/``.json``/``.csv`` manifest or a folder) so the CLI, the bench
and the pages read datasets the same way. A bad row fails the whole load
with the file and line in the message: a silently skipped row would change
the WER without anyone noticing.
"""

from __future__ import annotations

from core import audio as audio_io
from core import hub
from core.languages import language_key

import csv
import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST_SUFFIXES = (".jsonl", ".json", ".csv")
MANIFEST_NAMES = ("manifest.jsonl", "manifest.json", "manifest.csv")
TEXT_COLUMNS = ("text", "transcript", "transcription", "sentence", "normalized_text",
                "raw_transcription")


class DatasetError(ValueError):
    """A dataset cannot be read; the message names the file (and line) at fault."""


class DatasetUnavailableError(DatasetError):
    """A Hugging Face dataset is neither in the local cache nor reachable."""


@dataclass
class Sample:
    """One utterance: audio in a file, or in memory (bytes or an array), and its reference.

    Hugging Face sets hand over encoded bytes or arrays rather than files,
    hence the optional in-memory fields; :meth:`load_audio` hides the difference.
    """

    id: str
    audio_filepath: Path | None
    text: str
    duration: float | None = None
    language: str | None = None
    audio: np.ndarray | None = field(default=None, repr=False, compare=False)
    sampling_rate: int | None = None
    audio_bytes: bytes | None = field(default=None, repr=False, compare=False)
    # The row's other columns (speaker, accent, gender, age, client_id, …), carried into
    # every sample record so results can be sliced by them (core.slices).
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def load_audio(self, sampling_rate: int = audio_io.SAMPLE_RATE) -> np.ndarray:
        """Float32 mono samples at ``sampling_rate`` (raises :class:`core.audio.AudioError`)."""
        if self.audio is not None:
            return audio_io.resample(self.audio, self.sampling_rate or sampling_rate,
                                     sampling_rate)
        if self.audio_bytes is not None:
            return audio_io.load_audio(self.audio_bytes, sampling_rate, name=self.id)
        if self.audio_filepath is None:
            raise audio_io.AudioError(f"sample {self.id} has no audio")
        return audio_io.load_audio(self.audio_filepath, sampling_rate)

    def to_manifest_row(self) -> dict[str, Any]:
        """The NeMo-style JSONL row of a file-backed sample."""
        row: dict[str, Any] = {"id": self.id, "audio_filepath": str(self.audio_filepath),
                               "text": self.text}
        if self.duration is not None:
            row["duration"] = self.duration
        if self.language:
            row["language"] = self.language
        return {**self.extra, **row}


# --- manifests -------------------------------------------------------------------------


def _sample_from_row(row: dict[str, Any], where: str, base: Path) -> Sample:
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: expected an object with audio_filepath and text")
    # An empty text is a valid reference (a silent clip); an empty path is not.
    missing = [key for key in ("audio_filepath", "text") if row.get(key) is None]
    if not missing and not str(row["audio_filepath"]).strip():
        missing = ["audio_filepath"]
    if missing:
        found = ", ".join(sorted(map(str, row))) or "none"
        raise DatasetError(f"{where}: missing {' and '.join(missing)} (columns found: {found})")
    text = row["text"]
    if not isinstance(text, str):
        raise DatasetError(f"{where}: text must be a string, got {type(text).__name__}")
    raw_path = str(row["audio_filepath"])
    path = Path(raw_path).expanduser()
    if not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise DatasetError(f"{where}: audio file not found: {raw_path}")
    duration = row.get("duration")
    if duration in (None, ""):
        duration = None
    else:
        try:
            duration = float(duration)
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: duration {duration!r} is not a number") from None
    language = row.get("language") or None
    sample_id = str(row.get("id") or Path(raw_path).with_suffix("").as_posix())
    return Sample(sample_id, path, text, duration, str(language) if language else None,
                  extra=extra_columns(row))


MANIFEST_COLUMNS = frozenset({"id", "audio_filepath", "text", "duration", "language", "audio"})


def extra_columns(row: Mapping[str, Any], skip: Iterable[str] = ()) -> dict[str, Any]:
    """A row's columns beyond the ones ERT reads (``speaker``, ``accent``, ``gender``…):
    plain values only (text, numbers, booleans), for slicing."""
    skipped = MANIFEST_COLUMNS | set(skip)
    return {str(k): v for k, v in row.items() if k not in skipped
            and (v is None or isinstance(v, str | int | float | bool))}


def _jsonl_rows(path: Path, text: str) -> Iterable[tuple[str, Any]]:
    stripped = text.lstrip()
    if path.suffix == ".json" and stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        for index, row in enumerate(rows):
            yield f"{path} item {index + 1}", row
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{number}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{number}: invalid JSON ({exc.msg})") from None


def _csv_rows(path: Path, text: str) -> Iterable[tuple[str, Any]]:
    reader = csv.DictReader(text.splitlines())
    for row in reader:
        yield f"{path}:{reader.line_num}", {k.strip(): v for k, v in row.items() if k}


def load_manifest(path: str | Path) -> list[Sample]:
    """Read a NeMo-style JSONL manifest (``.jsonl``, or ``.json`` holding JSONL or a
    list) or a CSV with the same columns; relative audio paths are resolved
    against the manifest's folder."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read the manifest {path}: {exc}") from exc
    rows = _csv_rows(path, text) if path.suffix.lower() == ".csv" else _jsonl_rows(path, text)
    samples = [_sample_from_row(row, where, path.parent) for where, row in rows]
    if not samples:
        raise DatasetError(f"{path}: the manifest has no rows")
    return samples


# --- folders ---------------------------------------------------------------------------


def load_folder(folder: str | Path, language: str | None = None) -> list[Sample]:
    """Audio files (searched recursively) with a same-named ``.txt`` transcript beside each.

    A folder holding ``manifest.jsonl`` (what ``ert demo-data`` writes) is read
    through that manifest instead.
    """
    folder = Path(folder).expanduser()
    for name in MANIFEST_NAMES:
        if (folder / name).is_file():
            return load_manifest(folder / name)
    audio_files = sorted(p for p in folder.rglob("*") if p.is_file() and audio_io.is_audio_file(p))
    if not audio_files:
        kinds = ", ".join(audio_io.AUDIO_EXTENSIONS)
        raise DatasetError(f"{folder}: no audio files ({kinds}) and no manifest.jsonl")
    missing = [p for p in audio_files if not p.with_suffix(".txt").is_file()]
    if missing:
        shown = ", ".join(str(p.relative_to(folder)) for p in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DatasetError(f"{folder}: no .txt transcript for {shown}{more}")
    samples = []
    for path in audio_files:
        try:
            text = path.with_suffix(".txt").read_text(encoding="utf-8-sig").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot read {path.with_suffix('.txt')}: {exc}") from exc
        sample_id = path.relative_to(folder).with_suffix("").as_posix()
        samples.append(Sample(sample_id, path, text, language=language))
    return samples


# --- Hugging Face ----------------------------------------------------------------------


def language_from_config(config: str | None) -> str | None:
    """``french`` (MLS), ``fr_fr`` (FLEURS), ``fr`` (Common Voice) all give ``fr``; a config
    that names no language (``clean``) gives ``None``."""
    key = language_key(config)
    return key if key and re.fullmatch(r"[a-z]{2}", key) else None


def _hf_load(name: str, config: str | None, split: str) -> Any:
    import datasets

    try:
        return datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # the hub client raises many unrelated types
        text = str(exc)
        network_words = ("couldn't reach", "offline", "connect", "resolve", "network",
                         "max retries", "temporary failure", "doesn't exist on the hub",
                         "cannot find", "not found")
        where = f"{name}" + (f" ({config})" if config else "")
        if hub.offline() or any(word in text.lower() for word in network_words):
            raise DatasetUnavailableError(
                f"the dataset {where} is not in the local cache, and the hub is unreachable "
                "(download it once where the hub is reachable, or export it as a manifest)"
            ) from exc
        first = text.splitlines()[0] if text else type(exc).__name__
        raise DatasetError(f"cannot load the dataset {where} split {split}: {first}") from exc


def load_hf_dataset(
    name: str,
    config: str | None = None,
    split: str = "test",
    *,
    samples: int | None = None,
    seed: int = 0,
    text_column: str | None = None,
    audio_column: str = "audio",
    language: str | None = None,
) -> list[Sample]:
    """Load a split with ``datasets.load_dataset`` (cache or hub) as in-memory samples.

    Audio is kept encoded (``decode=False``) and decoded by :mod:`core.audio`:
    ``datasets`` 4+ decodes through torchcodec, which ERT does not install.
    The subset is chosen before any audio is read.
    """
    from datasets import Audio

    dataset = _hf_load(name, config, split)
    columns = list(dataset.column_names)
    text_column = text_column or next((c for c in TEXT_COLUMNS if c in columns), None)
    if text_column not in columns:
        raise DatasetError(f"{name}: no transcript column among {', '.join(columns)}; "
                           f"expected one of {', '.join(TEXT_COLUMNS)}")
    if audio_column not in columns:
        raise DatasetError(f"{name}: no {audio_column!r} column among {', '.join(columns)}")
    indices = subset_indices(len(dataset), samples, seed)
    dataset = dataset.select(indices)
    if isinstance(dataset.features[audio_column], Audio):
        dataset = dataset.cast_column(audio_column, Audio(decode=False))
    language = language or language_from_config(config)
    out = []
    for index, row in zip(indices, dataset, strict=True):
        sample_id = str(row.get("id") or f"{name}/{split}/{index}")
        sample = _hf_sample(sample_id, row[audio_column], row[text_column], language)
        sample.extra = extra_columns(row, (audio_column, text_column))
        out.append(sample)
    return out


def _hf_sample(sample_id: str, value: Any, text: Any, language: str | None) -> Sample:
    if not isinstance(value, dict):
        raise DatasetError(f"{sample_id}: unsupported audio value {type(value).__name__}")
    text = "" if text is None else str(text)
    if value.get("array") is not None:
        array = np.asarray(value["array"], dtype=np.float32)
        rate = int(value.get("sampling_rate") or audio_io.SAMPLE_RATE)
        return Sample(sample_id, None, text, array.shape[-1] / rate, language,
                      audio=array, sampling_rate=rate)
    if value.get("bytes"):
        return Sample(sample_id, None, text, None, language, audio_bytes=value["bytes"])
    if value.get("path") and Path(value["path"]).is_file():
        return Sample(sample_id, Path(value["path"]), text, None, language)
    raise DatasetError(f"{sample_id}: the audio has neither bytes, an array nor a local file")


# --- entry point -----------------------------------------------------------------------


def subset_indices(total: int, samples: int | None, seed: int = 0) -> list[int]:
    """Indices of a reproducible subset, in dataset order.

    The first ``samples`` items of one seeded permutation are kept, so a
    smaller subset is contained in a larger one with the same seed.
    """
    if samples is not None and samples <= 0:
        raise DatasetError(f"--samples must be a positive number, got {samples}")
    if samples is None or samples >= total:
        return list(range(total))
    order = list(range(total))
    random.Random(seed).shuffle(order)
    return sorted(order[:samples])


def take_subset(items: Sequence[Sample], samples: int | None, seed: int = 0) -> list[Sample]:
    """The reproducible subset of :func:`subset_indices`, applied to a list."""
    return [items[i] for i in subset_indices(len(items), samples, seed)]


def parse_hf_spec(spec: str) -> tuple[str, str | None, str]:
    """``hf:NAME[:CONFIG[:SPLIT]]`` as (name, config or None, split defaulting to ``test``)."""
    parts = spec.removeprefix("hf:").split(":")
    if not parts[0] or len(parts) > 3:
        raise DatasetError(f"bad dataset spec {spec!r}; expected hf:NAME[:CONFIG[:SPLIT]]")
    config = parts[1] if len(parts) > 1 and parts[1] else None
    split = parts[2] if len(parts) > 2 and parts[2] else "test"
    return parts[0], config, split


def dataset_label(spec: str | None) -> str:
    """A dataset's short name for tables and headers: ``data/demo/manifest.jsonl`` is
    ``demo``, ``hf:NAME:CONFIG:SPLIT`` is ``NAME (CONFIG, SPLIT)``, a folder its name.

    Reads no file, so a run copied from another machine is labelled like a local one.
    """
    if not spec:
        return ""
    if spec.startswith("hf:"):
        try:
            name, config, split = parse_hf_spec(spec)
        except DatasetError:
            return spec
        return f"{name} ({', '.join(p for p in (config, split) if p)})"
    path = Path(spec.rstrip("/\\") or spec)
    if path.name.lower() in MANIFEST_NAMES:  # the file says nothing; its folder does
        return path.parent.name or path.name
    if path.suffix.lower() in MANIFEST_SUFFIXES and path.parent.name:
        return f"{path.parent.name}/{path.name}"
    return path.name or spec


def load_dataset_spec(spec: str, samples: int | None = None, seed: int = 0) -> list[Sample]:
    """Load ``hf:NAME[:CONFIG[:SPLIT]]``, a ``.jsonl``/``.json``/``.csv`` manifest or a
    folder, keeping a reproducible subset of ``samples`` items (all when None)."""
    if spec.startswith("hf:"):
        name, config, split = parse_hf_spec(spec)
        return load_hf_dataset(name, config, split, samples=samples, seed=seed)
    path = Path(spec).expanduser()
    if path.is_dir():
        items = load_folder(path)
    elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        items = load_manifest(path)
    elif path.exists():
        raise DatasetError(f"{spec}: not a manifest; expected {', '.join(MANIFEST_SUFFIXES)}")
    else:
        raise DatasetError(f"{spec}: no such file or folder (expected hf:NAME[:CONFIG[:SPLIT]], "
                           "a .jsonl/.json/.csv manifest or a folder)")
    return take_subset(items, samples, seed)

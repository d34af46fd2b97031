"""onnxruntime-genai as the CPU chat engine: an int4 ONNX model built once, decoded natively.

Why (issue 30, BENCHMARKS.md "Chat engine"): onnxruntime-genai's native generation loop over
ONNX Runtime's weight-only int8 kernels decodes the bundled SmolLM2-135M several times faster than
ERT's own torch decoder (:mod:`core.llm.packed_decoder`, kept as the fallback). Its model builder
(``onnxruntime_genai.models.builder``, ``-p int8 -e cpu``) turns the safetensors folder
ERT converts from the GGUF into ``model.onnx`` once: about 20 s, in a child process, so
that its imports (transformers, onnx, onnxscript), its ~1.8 GB peak and its log never reach
the app or ``ert chat``'s stdout. The result is cached under ``.ert/cache/llm/`` with a
manifest (the source's hash, the builder's version, the precision); a folder whose manifest
does not match, or whose model fails to load, is rebuilt. A model the builder cannot
handle is remembered as such, and the caller falls back.
"""

from __future__ import annotations

from core import paths
from core.files import temporary_sibling, write_atomic

import contextlib
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# int8, not int4: re-quantizing the dequantized GGUF to int4 picked fp32's next token at 74 %
# of positions (teacher-forced, 3 prompts x 64 tokens), int8 at 93 %, at the same decode speed
# and a faster prefill on this CPU (`python -m bench chat_engine`, BENCHMARKS.md).
PRECISION = "int8"
PRECISIONS = ("int4", "int8")
EXECUTION_PROVIDER = "cpu"
# prune_lm_head: the prompt's prefill computes logits for its last token only, not for all
# of them (a 1,000-token prompt otherwise spends ~60 GFLOP in the 49k-row output head).
BUILD_OPTIONS = ("prune_lm_head=true",)
MANIFEST = "ert-onnx.json"
FAILED = "ert-onnx-failed.json"
BUILD_LOG = "build.log"
MANIFEST_FORMAT = 1
# The source files whose content defines the built model (weights, shapes, tokenizer).
_SOURCE_SUFFIXES = (".safetensors", ".json", ".jinja", ".model", ".txt")


class OnnxBuildError(RuntimeError):
    """The builder failed on this model; the message ends with its log's last lines."""


def installed() -> bool:
    """Whether onnxruntime-genai is importable (a pinned runtime dependency) and not turned
    off: ``ERT_LLM_ONNX=0`` selects the packed torch decoder (benchmarks, a fallback)."""
    import importlib.util

    if os.environ.get("ERT_LLM_ONNX", "1").strip().lower() in {"0", "false", "no", "off"}:
        return False
    return importlib.util.find_spec("onnxruntime_genai") is not None


@functools.cache
def builder_version() -> str:
    from importlib.metadata import version

    return version("onnxruntime-genai")


def engine_dir(source: Path, precision: str = PRECISION) -> Path:
    """Where the ONNX build of ``source`` is cached: beside ERT's converted weights."""
    source = source.resolve()
    tag = hashlib.sha1(str(source).encode()).hexdigest()[:8]
    return paths.cache_dir("llm") / f"{source.name}-{tag}-onnx-{precision}"


def _source_files(source: Path) -> list[Path]:
    return sorted(p for p in source.iterdir() if p.is_file() and p.suffix in _SOURCE_SUFFIXES
                  and not p.name.startswith("ert-"))


def _stat_stamp(source: Path) -> dict[str, list[int]]:
    return {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in _source_files(source)}


def source_hash(source: Path) -> str:
    """SHA-256 over the source's files (names and contents): the build's identity."""
    digest = hashlib.sha256()
    for path in _source_files(source):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            while block := handle.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()


def _wanted(source: Path, sha: str | None = None, precision: str = PRECISION) -> dict[str, Any]:
    """What a manifest must say for a cached build of ``source`` to be used."""
    return {"format": MANIFEST_FORMAT, "builder": builder_version(), "precision": precision,
            "execution_provider": EXECUTION_PROVIDER, "options": list(BUILD_OPTIONS),
            "source_sha256": sha or source_hash(source)}


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _matches(record: dict[str, Any] | None, source: Path, record_path: Path,
             precision: str = PRECISION) -> bool:
    """Whether ``record`` was made from ``source`` as it is now, by this builder and settings.

    The source is re-hashed only when a file's size or time changed (hashing the 540 MB of
    fp32 weights takes seconds); a same-content touch just refreshes the stamp."""
    if record is None:
        return False
    keys = ("format", "builder", "precision", "execution_provider", "options")
    wanted = _wanted(source, "-", precision)
    if any(record.get(k) != wanted[k] for k in keys):
        return False
    stamp = _stat_stamp(source)
    if record.get("source_stat") == stamp:
        return True
    if record.get("source_sha256") != source_hash(source):
        return False
    record["source_stat"] = stamp
    with contextlib.suppress(OSError):  # a read-only cache: hashed again next time
        write_atomic(record_path, json.dumps(record, indent=2))
    return True


def _failure_file(target: Path) -> Path:
    return target.with_name(f"{target.name}.{FAILED}")


def is_built(source: Path, precision: str = PRECISION) -> bool:
    """Whether a build of ``source`` as it is now, by this builder, is cached."""
    target = engine_dir(source, precision)
    return _matches(_read(target / MANIFEST), source, target / MANIFEST, precision)


def cached_failure(source: Path, precision: str = PRECISION) -> str | None:
    """Why the builder failed on ``source`` as it is now, or ``None`` (no recorded failure)."""
    failed = _failure_file(engine_dir(source, precision))
    record = _read(failed)
    if not _matches(record, source, failed, precision):
        return None
    return " | ".join((record or {}).get("log") or []) or "the builder failed"


def needs_build(source: Path, precision: str = PRECISION) -> bool:
    """Whether the next load first builds the ONNX model (tens of seconds, once)."""
    return installed() and not is_built(source, precision) \
        and cached_failure(source, precision) is None


def build(source: Path, precision: str = PRECISION) -> Path:
    """Build the ONNX model of ``source`` (in a child process) and cache it atomically.

    Raises :class:`OnnxBuildError` when the builder fails (an architecture it does not
    support, a missing file); the failure is recorded so later loads do not retry it.
    """
    target = engine_dir(source, precision)
    sha = source_hash(source)
    tmp = temporary_sibling(target)
    tmp.mkdir(parents=True)
    started = time.perf_counter()
    log = tmp / BUILD_LOG
    with log.open("w", encoding="utf-8") as handle:
        code = subprocess.call(
            [sys.executable, "-m", "core.llm.onnx_engine", str(source), str(tmp), precision],
            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "TQDM_DISABLE": "1"})
    failed = _failure_file(target)
    if code != 0 or not (tmp / "model.onnx").exists():
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        write_atomic(failed, json.dumps({**_wanted(source, sha, precision),
                                         "source_stat": _stat_stamp(source), "exit": code,
                                         "log": tail}, indent=2))
        shutil.rmtree(tmp, ignore_errors=True)
        raise OnnxBuildError(f"the ONNX build of {source.name} failed (exit {code}): "
                             + " | ".join(tail))
    manifest = {**_wanted(source, sha, precision), "source": str(source),
                "source_stat": _stat_stamp(source), "built_at": time.time(),
                "build_seconds": round(time.perf_counter() - started, 2)}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    failed.unlink(missing_ok=True)
    return target


@dataclass
class DecodeResult:
    new_tokens: int
    prefill_seconds: float
    decode_seconds: float

    @property
    def decode_tokens_per_second(self) -> float:
        steps = self.new_tokens - 1
        return steps / self.decode_seconds if steps > 0 and self.decode_seconds > 0 else 0.0


class OnnxDecoder:
    """One built ONNX model and its onnxruntime-genai session (CPU, batch of one)."""

    def __init__(self, folder: Path, threads: int) -> None:
        import onnxruntime_genai as og

        config = og.Config(str(folder))
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {
            "intra_op_num_threads": int(threads), "inter_op_num_threads": 1}}}}))
        self.model = og.Model(config)
        self.folder = folder
        self.threads = threads
        genai = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
        self.context_length = int(genai["model"]["context_length"])
        self.top_k = int(genai.get("search", {}).get("top_k") or 50)
        manifest = _read(folder / MANIFEST) or {}
        self.precision = str(manifest.get("precision") or PRECISION)
        self.build_seconds = manifest.get("build_seconds")

    @property
    def nbytes(self) -> int:
        """The model's weights on disk (memory-mapped by ONNX Runtime)."""
        return sum(p.stat().st_size for p in self.folder.glob("model.onnx*"))

    def generate(self, input_ids: list[int], max_new_tokens: int, do_sample: bool = False,
                 temperature: float = 1.0, top_p: float = 1.0, top_k: int | None = None,
                 repetition_penalty: float = 1.0, min_new_tokens: int = 0,
                 should_stop: Callable[[], bool] = lambda: False,
                 on_token: Callable[[int], None] = lambda token: None) -> DecodeResult:
        """Decode up to ``max_new_tokens`` after ``input_ids``, as ``generate`` would.

        Sampling, top-k/top-p, the repetition penalty and the minimum length are the
        library's own search options; ``should_stop`` is checked before every token.
        """
        import onnxruntime_genai as og

        prompt = len(input_ids)
        total = min(prompt + int(max_new_tokens), self.context_length)
        params = og.GeneratorParams(self.model)
        search: dict[str, Any] = {"max_length": total, "do_sample": bool(do_sample),
                                  "repetition_penalty": float(repetition_penalty or 1.0)}
        if min_new_tokens:
            search["min_length"] = min(prompt + int(min_new_tokens), total)
        if do_sample:
            search.update(temperature=float(temperature), top_p=float(top_p),
                          top_k=int(top_k or self.top_k))
        params.set_search_options(**search)
        generator = og.Generator(self.model, params)
        started = time.perf_counter()
        prefill, n = 0.0, 0
        if prompt < total:
            generator.append_tokens(list(input_ids))
            while not generator.is_done() and not should_stop():
                generator.generate_next_token()
                token = int(generator.get_next_tokens()[0])
                n += 1
                if n == 1:
                    prefill = time.perf_counter() - started
                on_token(token)
        del generator
        return DecodeResult(n, prefill, time.perf_counter() - started - prefill)


def load(source: Path, threads: int | None = None,
         precision: str = PRECISION) -> OnnxDecoder | None:
    """The engine for the model folder ``source``, built first if needed; ``None`` where the
    library is missing or the builder cannot handle the model (the caller falls back).

    A cached build that fails to load (a truncated or edited file) is rebuilt once.
    """
    if not installed() or not source.is_dir() or cached_failure(source, precision):
        return None
    for _ in range(2):
        if not is_built(source, precision):
            try:
                build(source, precision)
            except (OnnxBuildError, OSError):  # OSError: an unwritable cache, a lost race
                return None
        target = engine_dir(source, precision)
        try:
            return OnnxDecoder(target, threads or decode_threads())
        except Exception:  # onnxruntime-genai raises plain RuntimeError/OSError
            shutil.rmtree(target, ignore_errors=True)
    return None


def decode_threads() -> int:
    """The session's intra-op threads: ``ERT_LLM_THREADS``, else ERT's thread cap
    (``ERT_THREADS``, :mod:`core.threads`), as every other model ERT runs.

    On idle cores 2 threads decoded 1.5x faster than 1 and halved the first token of a RAG
    prompt (``bench chat_engine``, BENCHMARKS.md); on cores other processes keep busy, ONNX
    Runtime's spinning pool loses its second core and 1 thread is faster:
    ``ERT_LLM_THREADS=1`` for a machine that runs an evaluation beside the chat.
    """
    from core import threads

    raw = os.environ.get("ERT_LLM_THREADS", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else threads.current().threads


def _build_main(source: str, out: str, precision: str) -> int:
    """The child process: run the builder as its CLI would (``-p int8 -e cpu``)."""
    from onnxruntime_genai.models import builder

    cache = Path(out) / ".hf"
    options = builder.parse_extra_options(None, source, out, precision, EXECUTION_PROVIDER,
                                          str(cache), list(BUILD_OPTIONS))
    builder.create_model(None, source, out, precision, EXECUTION_PROVIDER, str(cache), **options)
    shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(_build_main(sys.argv[1], sys.argv[2], sys.argv[3]))

"""One batch of models in one process: ``python -m core.evaluation.worker RUN_DIR BATCH``.

Inside, one model at a time: load, transcribe the pending samples in tuned
batches, record each sample at once, free. The process exits when the batch
is done, which hands every byte its models used back to the system.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps before torch)
from core.asr.availability import require
from core.asr.base import Backend, DecodeOptions
from core.asr.dtype import load_dtype
from core.asr.factory import create_backend
from core.asr.spec import AsrModelSpec
from core.audio import SAMPLE_RATE
from core.conditions import condition_of
from core.datasets import Sample, load_dataset_spec
from core.devices import is_cuda
from core.evaluation.cache import TranscriptCache, audio_hash, cache_key, tuning_key
from core.evaluation.claims import Claims
from core.evaluation.config import RunConfig
from core.evaluation.measurements import Measurement, MeasurementStore
from core.evaluation.memory_guard import MemoryGuard, take_sample
from core.evaluation.planner import planned_dtype
from core.evaluation.prefetch import AudioPrefetcher, Clip, read_clip
from core.evaluation.records import ModelRecord, RunRecords, SampleRecord
from core.evaluation.run_dir import RunDir, StatusWriter
from core.evaluation.shards import Shard
from core.evaluation.tuning import BatchSizeTuner
from core.memory_sample import host_load
from core.metrics import rtfx
from core.system import process_tree_rss_gb, release_freed_memory

import dataclasses
import functools
import gc
import itertools
import os
import random
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

CHECKPOINT_S = 2.0  # at most this often a running turn writes how far it got


class _LoadFailed(Exception):
    """The model could not be loaded: it fails, the batch goes on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()


class ModelEvaluation:
    """Evaluate one model on the pending samples of a run."""

    def __init__(self, spec: AsrModelSpec, batch: str, config: RunConfig, records: RunRecords,
                 guard: MemoryGuard, status: StatusWriter, cache: TranscriptCache | None,
                 budget_gb: float | None, measured: MeasurementStore | None = None,
                 dtype: str = "auto", resuming: bool = False) -> None:
        self.spec, self.batch, self.config = spec, batch, config
        # A resumed turn goes on where the run stopped: it neither follows nor records a
        # schedule (those start at the dataset's first sample), it starts at the size tuned.
        self.resuming = resuming
        self.records, self.guard, self.status, self.cache = records, guard, status, cache
        max_size = config.max_batch_size or (256 if is_cuda(config.device) else 32)
        self.dtype = dtype  # what to ask the backend for (the plan's choice or --dtype)
        self.weights = load_dtype(spec, config.device, dtype)  # what it will load in
        self.tuning_key = tuning_key(spec, config.device, self.weights)
        self.schedule_key = tuning_key(spec, config.device, self.weights,
                                       config.dataset_identity())
        # A repeated run of this model on this dataset follows the step sizes the last one
        # used, so each clip is decoded at the same batch size (identical transcripts);
        # otherwise tuning starts where it settled last time for this model and device.
        tuned = config.tune_batch_size
        replay = (cache.batch_schedule(self.schedule_key)
                  if tuned and cache is not None and not config.retune and not resuming
                  else None)
        remembered = (cache.batch_size(self.tuning_key)
                      if tuned and cache is not None and not config.retune else None)
        self.tuner = BatchSizeTuner(
            start=min(remembered or 1, max_size) if tuned else config.decode.batch_size,
            max_size=max_size, budget_gb=budget_gb, enabled=tuned,
            replay=[min(s, max_size) for s in replay] if replay else None)
        self.read_cache = config.use_cache  # --no-cache: transcribe all, still write
        self.write_cache = config.write_cache
        # Timed clips decoded in a batch of more than one: (sample, transcript, batch size),
        # for the batch-invariance check.
        self.batched: list[tuple[Sample, str, int]] = []
        self.failures = 0
        self.measured = measured
        self.timed_clips: list[float] = []  # audio seconds of what the model transcribed
        self.compute = 0.0  # and the compute seconds it took
        self.done = 0
        self.device: str | None = None  # set by a data-parallel worker: where it runs
        self.replicas = 1  # workers sharing that device
        self.decoding_seconds = 0.0  # wall time of the transcription loop
        self._skipped: deque[tuple[Sample, str | None]] = deque()
        self._outbox: list[SampleRecord] = []  # recorded, not yet written (see _flush)
        self.skipped = 0  # samples recorded as skipped (other languages): not in the rate
        self.loaded = False  # the model is loaded only once a sample needs it (not all cached)
        # Where a data-parallel turn runs ({"shard", "device", "node"}), on each of its lines.
        self.placement: dict[str, str | None] = {}

    def _record(self, sample: Sample, **fields: Any) -> None:
        """Add one sample's outcome to what :meth:`_flush` writes next; ``fields`` are
        :class:`SampleRecord`'s (time, error, latency, …); the sample's own facts are
        filled in here."""
        fields.setdefault("duration", sample.duration)
        fields.setdefault("device", self.device)
        self._outbox.append(SampleRecord(
            id=sample.id, model=self.spec.key, batch=self.batch,
            audio_filepath=str(sample.audio_filepath) if sample.audio_filepath else None,
            reference=sample.text, language=sample.language, extra=sample.extra,
            condition=condition_of(sample), **{"hypothesis": "", "time": 0.0, **fields}))
        self.done += 1
        self.failures += fields.get("error") is not None

    def _flush(self) -> None:
        """Write what was recorded since the last flush: a step's samples together, one
        flush to disk for the batch, before the next batch starts."""
        if self._outbox:
            self.records.add_samples(self._outbox)
            self._outbox = []

    def _options(self, size: int) -> DecodeOptions:
        return dataclasses.replace(self.config.decode, batch_size=size)

    def _language(self, sample: Sample) -> str | None:
        """The language a sample is decoded in: the run's override, else its own."""
        return self.config.decode.language or sample.language

    def _wanted(self, samples: Iterable[Sample]) -> Iterator[Sample]:
        """The samples in languages the model transcribes (all, if the run asks for every
        language); the others are set aside for :meth:`_record_skipped`. Runs on the
        audio-reading thread, so it only queues them."""
        for sample in samples:
            language = self._language(sample)
            if self.config.all_languages or self.spec.supports(language):
                yield sample
            else:
                self._skipped.append((sample, language))

    def _record_skipped(self) -> None:
        """Record the samples :meth:`_wanted` set aside as skipped (not run, not failed)."""
        while self._skipped:
            sample, language = self._skipped.popleft()
            self.skipped += 1
            self._record(sample, skipped=(
                f"wrong language: {language} ({self.spec.key} transcribes "
                f"{', '.join(self.spec.languages)})"))
        self._flush()

    def _step(self, backend: Callable[[], Backend], chunk: list[Clip]) -> None:
        """Serve cache hits, transcribe the rest of ``chunk`` (read ahead) as one batch,
        and write the step's records together, whatever the batch raised.

        Times recorded per sample (README "Speed"): ``decode_seconds`` (reading its
        audio; read ahead on a thread for a GPU model), ``time`` (its share of the batch's compute),
        ``latency`` (from the start of this step to its result, as a caller of a
        batching server would wait).
        """
        try:
            self._run_step(backend, chunk)
        finally:
            self._flush()

    def _run_step(self, loaded: Callable[[], Backend], chunk: list[Clip]) -> None:
        step_started = time.perf_counter()
        to_run: list[tuple[Sample, Any, str | None, float]] = []
        for clip in chunk:
            sample, audio, decoding = clip.sample, clip.audio, clip.seconds
            if audio is None:
                self._record(sample, error=clip.error, decode_seconds=decoding)
                continue
            key = None
            language = self._language(sample)
            if self.cache is not None and (self.read_cache or self.write_cache):
                decode = dataclasses.replace(self.config.decode, language=language)
                key = cache_key(self.spec, decode, audio_hash(audio), self.weights,
                                condition_of(sample))
                hit = self.cache.get(key) if self.read_cache else None
                if hit is not None:
                    self._record(sample, hypothesis=hit.text, cached=True,
                                 cached_time=hit.seconds, duration=audio.size / SAMPLE_RATE,
                                 decoded_language=language, decode_seconds=decoding,
                                 latency=time.perf_counter() - step_started)
                    continue
            to_run.append((sample, audio, key, decoding))
        if not to_run:
            return
        backend = loaded()  # loaded on the first step that has something to transcribe
        size = len(to_run)
        started = time.perf_counter()
        results = backend.transcribe([a for _, a, _, _ in to_run], self._options(size),
                                     languages=[s.language for s, _, _, _ in to_run])
        finished = time.perf_counter()
        fresh: list[tuple[str, str, float | None]] = []  # for the cache, stored together
        for (sample, audio, key, decoding), result in zip(to_run, results, strict=True):
            self._record(sample, hypothesis=result.text, time=result.seconds, error=result.error,
                         batch_size=size, duration=result.audio_seconds or audio.size / SAMPLE_RATE,
                         decoded_language=result.language, decode_seconds=decoding,
                         latency=finished - step_started)
            if result.ok:
                self.timed_clips.append(result.audio_seconds)
                self.compute += result.seconds
                if size > 1:
                    self.batched.append((sample, result.text, size))
            if key is not None and result.ok:
                fresh.append((key, result.text, result.seconds))
        if fresh and self.cache is not None and self.write_cache:
            self.cache.put_many(fresh)
        self.tuner.observe(size, sum(r.audio_seconds for r in results), finished - started,
                           self.guard.peak_rss_gb - self.guard.baseline_rss_gb)

    def run(self, pending: Iterable[Sample], run: RunDir, position: dict[str, int],
            total: int) -> ModelRecord | None:
        """Evaluate the model on ``pending``: a list, or an iterator that hands out samples
        as they are read (:mod:`core.evaluation.claims`), of about ``total`` samples.
        None when it handed out nothing (the other workers took it all)."""
        started = time.time()
        record = ModelRecord(model=self.spec.key, batch=self.batch, status="running",
                             started=started, turn=f"{socket.gethostname()}:{os.getpid()}:"
                                                   f"{started:.6f}", **self.placement)
        self.guard.reset(self.config.guard.limit_gb)
        self.status.update(model=self.spec.key, phase="loading", done=self.done, total=total,
                           failures=0, batch_size=None, **position)
        wanted = self._wanted(pending)
        first = next(wanted, None)  # before loading: there may be nothing to load it for
        self._record_skipped()
        if first is None:  # nothing in this model's languages, or nothing left
            record.status, record.loaded = "ok", False
            record.samples_done, record.ended = self.done, time.time()
            return record if self.done else None
        # The first batch's audio is read while the model loads, each next one while the
        # model transcribes the current one.
        reader = AudioPrefetcher(itertools.chain([first], wanted), lambda: self.tuner.size,
                                 background=is_cuda(self.config.device))
        backend = create_backend(self.spec, self.config.device, self.dtype)
        loaded = functools.partial(self._loaded, backend, record)
        try:
            if not self.read_cache:  # every sample will need the model: load it now
                loaded()
        except _LoadFailed as failed:
            reader.close()
            record.status, record.error = "failed", failed.reason
            record.ended = time.time()
            return record
        began, before = time.perf_counter(), self.done - self.skipped
        first_step = True  # checkpointed at once: a kill soon after keeps its samples counted
        try:
            while True:
                if run.cancel_requested():
                    record.status = "cancelled"
                    break
                chunk = reader.take(self.tuner.size)
                self._record_skipped()
                if not chunk:
                    break
                if self.guard.tripped.is_set():  # what is taken and not run stays pending
                    record.status, record.error = "stopped: memory", self.guard.reason
                    break
                self._step(loaded, chunk)
                elapsed = time.perf_counter() - began
                rate = (self.done - self.skipped - before) / elapsed if elapsed > 0 else 0.0
                total = max(total, self.done)  # a worker that shares may do more than its part
                self.status.update(
                    phase="transcribing", done=self.done, failures=self.failures, total=total,
                    batch_size=self.tuner.size, samples_per_s=round(rate, 3),
                    eta_s=round((total - self.done) / rate, 1) if rate else None,
                    host_load=host_load(self.guard.latest))
                self._checkpoint(record, force=first_step)
                first_step = False
            self.decoding_seconds = time.perf_counter() - began
            if record.status == "running" and self.loaded and self.config.check_batch_invariance:
                record.invariance = self._check_invariance(backend)
        except _LoadFailed as failed:  # any load failure fails this model, not the batch
            record.status, record.error = "failed", failed.reason
        except Exception as exc:
            if not _is_oom(exc):
                raise
            record.status, record.error = "stopped: memory", f"{type(exc).__name__}: {exc}"
        finally:
            reader.close()
            self._record_skipped()
            record.packing_retries = backend.packing_retries
            backend.free()
            del backend
            gc.collect()
            release_freed_memory()
        if record.status == "running":
            record.status = "ok"
        self._fill(record)
        if self.loaded:
            # What the model took above the worker's memory just before it loaded, and what
            # the worker still holds once it is freed: the planner's measured needs.
            record.retained_gb = round(max(process_tree_rss_gb(self.guard.pid)
                                           - self.guard.baseline_rss_gb, 0.0), 3)
        if self.cache is not None and self.tuner.enabled and self.tuner.curve:
            self.cache.remember_batch_size(self.tuning_key, self.tuner.best)
        if self.cache is not None and self.tuner.steps and not self.tuner.replaying \
                and self.config.tune_batch_size and not self.resuming:
            self.cache.remember_batch_schedule(self.schedule_key, self.tuner.steps)
        record.ended = time.time()
        if record.status != "failed":
            self._measure(record)
        return record

    def _loaded(self, backend: Backend, record: ModelRecord) -> Backend:
        """The backend, loaded on the first call. Its libraries are imported and what the
        previous model left in the allocator handed back before the memory baseline is
        taken, so that a model's measured need is the same whatever ran before it."""
        if self.loaded:
            return backend
        try:
            require(self.spec, self.config.device)  # the hub cannot send it: fail now
            backend.preload()  # before the trim: importing frees what it allocated meanwhile
            release_freed_memory()
            self.guard.reset(self.config.guard.limit_gb)
            backend.load()
        except Exception as exc:
            raise _LoadFailed(f"{type(exc).__name__}: {exc}") from exc
        self.loaded = True
        record.load_seconds = backend.load_seconds
        record.dtype = backend.dtype
        self.guard.check(take_sample(self.guard.pid))  # a load alone may cross the limit
        self._checkpoint(record, force=True)
        return backend

    def _fill(self, record: ModelRecord) -> None:
        """What the turn has done so far, on its record (a checkpoint or its ending)."""
        record.loaded = self.loaded
        record.samples_done = self.done
        record.compute_seconds = round(self.compute, 4)
        record.batch_size = self.tuner.best
        record.batch_curve = self.tuner.curve_dicts()
        record.batch_steps = list(self.tuner.steps)
        record.batch_replayed = self.tuner.replaying
        if self.loaded:
            record.peak_growth_gb = round(max(self.guard.peak_rss_gb
                                              - self.guard.baseline_rss_gb, 0.0), 3)
            record.peak_rss_gb = round(self.guard.peak_rss_gb, 3)
            record.peak_gpu_gb = round(self.guard.peak_gpu_gb, 3) or None

    def _checkpoint(self, record: ModelRecord, force: bool = False) -> None:
        """Write how far the turn got (status ``running``), at most every
        ``CHECKPOINT_S``: a worker killed mid-turn leaves its load time, peaks, compute and
        tuning curve behind (:meth:`RunRecords.turns`)."""
        now = time.time()
        if not force and now - (record.updated or 0.0) < CHECKPOINT_S:
            return
        self._fill(record)
        record.updated = now
        self.records.add_model(record)

    def _check_invariance(self, backend: Backend) -> dict[str, Any] | None:
        """Re-decode up to ``check_batch_invariance`` clips that were decoded in a batch of
        more than one, each alone, and keep both transcripts' sizes and the single ones
        (the results count the clips that differ and the WER it makes)."""
        if not self.batched:
            return {"batch_sizes": {}, "single": {}}
        chosen = sorted(self.batched, key=lambda b: b[0].id)
        count = self.config.check_batch_invariance
        if len(chosen) > count:
            chosen = sorted(random.Random(self.config.seed).sample(chosen, count),
                            key=lambda b: b[0].id)
        self.status.update(phase="checking batch invariance", done=self.done)
        single: dict[str, str] = {}
        for sample, _, _ in chosen:
            clip = read_clip(sample)
            if clip.audio is None:
                continue
            result = backend.transcribe([clip.audio], self._options(1),
                                        languages=[sample.language])[0]
            if result.ok:
                single[sample.id] = result.text
        return {"batch_sizes": {s.id: size for s, _, size in chosen if s.id in single},
                "single": single}

    def _measure(self, record: ModelRecord) -> None:
        """Add this turn to the machine's measurements, if the model transcribed anything."""
        if self.measured is None or not self.timed_clips:
            return
        self.measured.add(self.spec, Measurement(
            device=self.config.device, dtype=record.dtype, batch_size=max(
                (p["batch_size"] for p in record.batch_curve), default=record.batch_size),
            clip_seconds=max(self.timed_clips), peak_gb=record.peak_growth_gb or 0.0,
            retained_gb=record.retained_gb,
            peak_gpu_gb=record.peak_gpu_gb, rtfx=rtfx(sum(self.timed_clips), self.compute),
            load_seconds=record.load_seconds, measured=time.time(), replicas=self.replicas,
            throughput=(round(sum(self.timed_clips) / self.decoding_seconds, 3)
                        if self.decoding_seconds > 0 else None)))


def run_batch(run_dir: Path, batch_name: str, shard: Shard | None = None,
              claims: Path | None = None) -> int:
    """Evaluate every model of ``batch_name`` that still has work; 0 when done.

    ``shard``: this worker is one of several data-parallel ones. With ``claims`` (the
    dispatch's folder, :mod:`core.evaluation.claims`) the workers share each model's
    samples as they go; without, this one takes its dealt share (every ``count``-th).
    """
    shard = shard or Shard()
    parallel = shard.count > 1
    run = RunDir(run_dir)
    config = run.read_config()
    plan = run.read_plan()
    batch = plan.batch(batch_name)
    registry = config.registry()
    samples = config.work_items(load_dataset_spec(config.dataset, config.samples, config.seed))
    sharing = parallel and claims is not None
    mine = samples if sharing else shard.take(samples)
    records = run.records(repair=not parallel)  # parallel ones share the logs as they write
    status = run.status_writer(shard.index if parallel else None, batch=batch_name,
                               **({"shard": shard.label, "device": shard.device,
                                   "node": socket.gethostname()} if parallel else {}))
    guard = MemoryGuard(config.guard)
    guard.start()
    # Opened even with --no-cache: it is written, and keeps the batch sizes a run used.
    cache = TranscriptCache()
    measured = MeasurementStore()
    # A model that failed to load is done: its failure is recorded, not retried on resume.
    failed = records.failed_models()
    try:
        for position, key in enumerate(batch.models):
            done = records.done(key)
            pending: Iterable[Sample] = [s for s in mine if s.id not in done]
            if not pending or key in failed:
                continue
            if run.cancel_requested():
                break
            total = len(pending)
            if sharing:
                assert claims is not None
                total = -(-total // shard.count)  # about its part; it may take more
                share = Claims(claims / str(position), shard.index, shard.count)
                pending = (s for chunk in share.chunks(samples) for s in chunk
                           if s.id not in done)
            evaluation = ModelEvaluation(registry.get(key), batch_name, config, records, guard,
                                         status, cache, plan.budget_gb, measured,
                                         planned_dtype(plan, key, config.dtype),
                                         resuming=bool(done))
            evaluation.device = shard.device if parallel else None
            evaluation.replicas = shard.replicas
            if parallel:
                evaluation.placement = {"shard": shard.label, "device": shard.device,
                                        "node": socket.gethostname()}
            record = evaluation.run(
                pending, run, {"model_index": position, "models_total": len(batch.models)},
                total)
            if record is not None:
                records.add_model(record)
    finally:
        guard.stop()
        guard.write_stats(run.memory_stats(batch_name, shard.index if parallel else None))
        if cache is not None:
            cache.close()
        measured.close()
        status.update(phase="finished")
    return 0


def preload(run_dir: Path, batch_name: str) -> None:
    """Import what the batch's backends need, loading nothing (see :func:`hold`)."""
    run = RunDir(run_dir)
    config = run.read_config()
    registry = config.registry()
    for key in run.read_plan().batch(batch_name).models:
        try:
            create_backend(registry.get(key), config.device).preload()
        except Exception:  # noqa: S112  (its turn reports what is wrong with the model)
            continue


def hold(run_dir: Path, batch_name: str) -> bool:
    """A worker started ahead of its turn (``--hold``, :mod:`core.evaluation.runner` starts
    the next batch's while one runs): import what its models need, then wait for the runner
    to write ``go`` on its standard input. Anything else (the runner cancelled the run, or
    died, which closes the pipe) ends it without touching the run."""
    preload(run_dir, batch_name)
    return sys.stdin.readline().strip() == "go"


def main(argv: list[str] | None = None) -> int:
    """``python -m core.evaluation.worker RUN_DIR BATCH [--shard I/N --on DEVICE
    [--claims DIR]] [--hold]``."""
    args = list(argv if argv is not None else sys.argv[1:])
    held = "--hold" in args
    if held:
        args.remove("--hold")
    shard, claims = None, None
    if len(args) == 8 and args[6] == "--claims":
        claims = Path(args[7])
        args = args[:6]
    if len(args) == 6 and args[2] == "--shard" and args[4] == "--on":
        shard = Shard.parse(args[3], args[5])
        args = args[:2]
    if len(args) != 2:
        print("usage: python -m core.evaluation.worker RUN_DIR BATCH [--shard I/N --on DEVICE "
              "[--claims DIR]] [--hold]", file=sys.stderr)
        return 2
    if held and not hold(Path(args[0]), args[1]):
        return 0
    # SIGTERM (Cancel in the UI) ends the current step cleanly, like a cancel file.
    signal.signal(signal.SIGTERM, lambda *_: RunDir(args[0]).request_cancel())
    return run_batch(Path(args[0]), args[1], shard, claims)


if __name__ == "__main__":
    code = main()
    # A process that has loaded torch and transformers spends about a second tearing its
    # modules down (0.9 s here for a tiny Whisper; the runner waits for it, the GPUs idle).
    # Every record, log and store is written and closed by now: end at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

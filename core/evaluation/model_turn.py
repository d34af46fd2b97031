"""One model's turn in a worker process (:class:`ModelEvaluation`).

Load the model only once a sample needs it (cached ones do not), transcribe the pending
samples in tuned batches with their audio read ahead, record each step's samples at
once, checkpoint how far the turn got, free the model. The process around the turns (its
arguments, the batch's loop over models and what they share) is
:mod:`core.evaluation.worker`.
"""

from __future__ import annotations

from core.asr.availability import require
from core.asr.base import Backend, DecodeOptions
from core.asr.dtype import load_dtype
from core.asr.factory import create_backend
from core.asr.spec import AsrModelSpec
from core.audio import SAMPLE_RATE
from core.conditions import condition_of
from core.datasets import Sample
from core.devices import is_cuda
from core.evaluation.batch_invariance import redecode_alone
from core.evaluation.cache import TranscriptCache, audio_hash, cache_key, tuning_key
from core.evaluation.config import RunConfig
from core.evaluation.measurements import Measurement, MeasurementStore
from core.evaluation.memory_guard import MemoryGuard, take_sample
from core.evaluation.prefetch import AudioPrefetcher, Clip
from core.evaluation.records import ModelRecord, RunRecords, SampleRecord
from core.evaluation.run_dir import RunDir, StatusWriter
from core.evaluation.tuning import BatchSizeTuner
from core.memory_sample import host_load
from core.metrics import rtfx
from core.system import process_tree_rss_gb, release_freed_memory

import dataclasses
import functools
import gc
import itertools
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
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

    def _check_invariance(self, backend: Backend) -> dict[str, Any]:
        """Re-decode some of the clips decoded in batches, each alone
        (:func:`redecode_alone`); the live status shows the phase meanwhile."""
        if self.batched:
            self.status.update(phase="checking batch invariance", done=self.done)
        return redecode_alone(backend, self.batched, self.config.check_batch_invariance,
                              self.config.seed, self._options(1))

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

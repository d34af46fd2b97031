"""The batch-invariance check (``--check-batch-invariance N``), run at the end of a turn.

A clip's transcript can depend on the batch it was decoded in (padding, packed windows,
kernels chosen by batch size). The worker re-decodes a few of the clips it decoded in
batches of more than one, each alone, while the model is still loaded; the results
(:mod:`core.evaluation.results`) count the clips whose transcripts differ and the WER
that makes. Kept out of :mod:`core.evaluation.worker`: it needs only the loaded backend
and what the turn decoded, none of the turn's bookkeeping.
"""

from __future__ import annotations

from core.asr.base import Backend, DecodeOptions
from core.datasets import Sample
from core.evaluation.prefetch import read_clip

import random
from typing import Any


def redecode_alone(backend: Backend, batched: list[tuple[Sample, str, int]], count: int,
                   seed: int, options: DecodeOptions) -> dict[str, Any]:
    """Re-decode up to ``count`` of the ``batched`` clips ((sample, transcript, batch
    size)), each alone with ``options`` (batch size 1), and keep both transcripts' sizes
    and the single ones. The clips are picked with ``seed``, so a repeated run checks the
    same ones."""
    if not batched:
        return {"batch_sizes": {}, "single": {}}
    chosen = sorted(batched, key=lambda b: b[0].id)
    if len(chosen) > count:
        chosen = sorted(random.Random(seed).sample(chosen, count), key=lambda b: b[0].id)
    single: dict[str, str] = {}
    for sample, _, _ in chosen:
        clip = read_clip(sample)
        if clip.audio is None:
            continue
        result = backend.transcribe([clip.audio], options, languages=[sample.language])[0]
        if result.ok:
            single[sample.id] = result.text
    return {"batch_sizes": {s.id: size for s, _, size in chosen if s.id in single},
            "single": single}

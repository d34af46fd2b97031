"""Scoring a large run: 15,360 French samples (the size of Common Voice's French test set).

``python -m bench scoring``. Baseline, measured in the same run: the way ERT scored until commit
61a8285 (2026-11-27), jiwer's ``process_words`` / ``process_characters`` per pair and sacrebleu's
``corpus_bleu`` / ``corpus_chrf`` on one core. ERT: :func:`core.metrics.score` (RapidFuzz's
alignment directly; the samples spread over forked processes, :mod:`core.parallel`, when
there are enough of them and the process runs one thread), and the same on one process.
Last, what is left at a run's end when its samples were scored while GPU workers decoded
(:func:`core.metrics.prime`, what :class:`core.evaluation.results.ScoreAhead` does): the
same call, after priming (not timed). Each other ERT timing starts with nothing remembered.
Every variant must give the same WER, CER, BLEU and chrF. The pairs are the demo set's
French references against themselves with words dropped, swapped and added, so the
alignment does real work.
"""

from __future__ import annotations

import core  # noqa: F401  (thread caps first)
from core import metrics, parallel
from core.demo_data import SENTENCES

import random
import sys
from typing import Any

import jiwer
import sacrebleu

from bench.common import median, save, table, timed

SAMPLES = 15_360
REPEATS = 3


def _pairs() -> tuple[list[str], list[str]]:
    rng = random.Random(0)
    refs, hyps = [], []
    for k in range(SAMPLES):
        ref = SENTENCES["fr"][k % len(SENTENCES["fr"])]
        words = ref.split()
        for _ in range(rng.randint(0, 3)):
            i = rng.randrange(len(words))
            choice = rng.random()
            if choice < 0.4:
                words[i] = rng.choice(["le", "la", "des", "chat", "vingt"])
            elif choice < 0.7 and len(words) > 1:
                del words[i]
            else:
                words.insert(i, rng.choice(["euh", "alors", "donc"]))
        refs.append(ref)
        hyps.append(" ".join(words))
    return refs, hyps


def _before(refs: list[str], hyps: list[str]) -> tuple[float, float, float, float]:
    """ERT's scoring at commit 5133ff8 (2026-11-27): the same normaliser, jiwer per pair,
    sacrebleu's corpus calls."""
    errors = words = char_errors = chars = 0
    norm_r, norm_h = [], []
    for ref, hyp in zip(refs, hyps, strict=True):
        r, h = metrics.normalize(ref, "fr"), metrics.normalize(hyp, "fr")
        norm_r.append(r)
        norm_h.append(h)
        out = jiwer.process_words(r, h)
        errors += out.substitutions + out.deletions + out.insertions
        words += out.hits + out.substitutions + out.deletions
        out = jiwer.process_characters(r, h)
        char_errors += out.substitutions + out.deletions + out.insertions
        chars += out.hits + out.substitutions + out.deletions
    return (errors / words, char_errors / chars, sacrebleu.corpus_bleu(norm_h, [norm_r]).score,
            sacrebleu.corpus_chrf(norm_h, [norm_r]).score)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    refs, hyps = _pairs()

    def ert() -> tuple[float, float, float, float]:
        s = metrics.score(refs, hyps, "fr")
        return s.wer, s.cer, s.bleu, s.chrf

    def ert_one_process() -> tuple[float, float, float, float]:
        spread = metrics.PARALLEL_MIN_SAMPLES
        metrics.PARALLEL_MIN_SAMPLES = SAMPLES + 1
        try:
            return ert()
        finally:
            metrics.PARALLEL_MIN_SAMPLES = spread

    def forget() -> None:
        metrics._PRIMED.clear()

    def scored_ahead() -> None:
        forget()
        metrics.prime(refs, hyps, "fr")

    cores = parallel.usable_cores()
    variants = [("before: jiwer per pair, sacrebleu's corpus calls",
                 lambda: _before(refs, hyps), forget),
                ("ERT, one process", ert_one_process, forget),
                (f"ERT ({cores} cores, single-threaded: {parallel.single_threaded()})", ert,
                 forget),
                ("ERT, at the end of a run scored ahead", ert, scored_ahead)]
    rows, figures = [], []
    for name, run, ready in variants:
        ready()
        figures.append(tuple(round(x, 9) for x in run()))
        times = []
        for _ in range(REPEATS):
            ready()  # nothing remembered, or primed as during a run
            times.append(timed(run)[0])
        seconds = median(times)
        rows.append({"variant": name, "seconds": seconds})
        print(f"  {name}: {seconds:.2f} s", file=sys.stderr)
    for row in rows:
        row["x baseline"] = rows[0]["seconds"] / row["seconds"]
    same = all(f == figures[0] for f in figures)
    print(table(rows, f"scoring {SAMPLES} French samples (WER, CER, BLEU, chrF); "
                      f"same scores: {same}"))
    result = {"samples": SAMPLES, "cores": cores, "rows": rows, "same_scores": same,
              "scores": figures[0]}
    save("scoring", result)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])

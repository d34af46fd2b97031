"""A run's results: scored ahead while GPU workers decode, only summed at the end."""

from __future__ import annotations

from core import metrics
from core.evaluation.records import RunRecords, SampleRecord
from core.evaluation.results import ScoreAhead, summarize


def _sample(i: int, **kw: object) -> SampleRecord:
    values = dict(id=f"s{i}", model="whisper:x", batch="b", audio_filepath=None,
                  reference=f"le chat numéro {i} dort", hypothesis=f"le chat {i} dort",
                  language="fr", duration=1.0, time=0.1)
    values.update(kw)
    return SampleRecord(**values)  # type: ignore[arg-type]


def test_samples_scored_ahead_are_not_scored_again_at_the_end(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(metrics, "_PRIMED", {})
    records = RunRecords(tmp_path / "samples.jsonl", tmp_path / "models.jsonl")
    ahead = ScoreAhead(records)
    for i in range(6):
        records.add_sample(_sample(i))
    records.add_sample(_sample(6, hypothesis="", error="audio: unreadable"))
    records.add_sample(_sample(7, hypothesis="", skipped="wrong language: en"))
    ahead._next = 0.0  # due now
    ahead.step()
    records.add_sample(_sample(8))  # recorded after the last step
    scored: list[int] = []
    real = metrics._score_part
    monkeypatch.setattr(metrics, "_score_part", lambda rows: scored.append(len(rows)) or
                        real(rows))
    summaries, _rows = summarize(records)
    assert scored == [1]  # only the sample recorded after the step
    assert summaries["whisper:x"].succeeded == 7
    fresh = summaries["whisper:x"].wer
    monkeypatch.setattr(metrics, "_PRIMED", {})
    assert summarize(records)[0]["whisper:x"].wer == fresh


def test_scoring_ahead_that_fails_stops_quietly_and_the_end_still_scores(tmp_path, monkeypatch
                                                                        ) -> None:
    monkeypatch.setattr(metrics, "_PRIMED", {})
    records = RunRecords(tmp_path / "samples.jsonl", tmp_path / "models.jsonl")
    records.add_sample(_sample(0))
    ahead = ScoreAhead(records)
    ahead._next = 0.0

    def broken(rows: object) -> None:
        raise RuntimeError("a scoring bug")

    monkeypatch.setattr(metrics, "_score_part", broken)
    ahead.step()  # the run goes on
    assert ahead._next == float("inf")
    monkeypatch.undo()
    assert summarize(records)[0]["whisper:x"].succeeded == 1

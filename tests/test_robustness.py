"""Figures over robustness conditions, on built cases whose answers are known: the paired
degradation against clean, the SNR at which WER doubles, the verdict per condition against a
baseline, and `--by condition` through the slices."""

from __future__ import annotations

from core.analysis import analysis_of
from core.confidence import paired_delta_interval
from core.robustness import snr_at_double_wer
from core.scoring import Prediction, score_predictions

import pytest

REFERENCE = "the cat sat on the mat today"  # 7 words
CLIPS = [f"c{i:02d}" for i in range(20)]


def _hyp(errors: int) -> str:
    """The reference with its first ``errors`` words substituted."""
    words = REFERENCE.split()
    return " ".join(["zz"] * errors + words[errors:])


def _rows(model: str, errors: dict[str, list[int]]) -> list[Prediction]:
    """One prediction per clip under each condition, with that many word errors."""
    out = []
    for condition, per_clip in errors.items():
        for clip, count in zip(CLIPS, per_clip, strict=True):
            row_id = clip if condition == "clean" else f"{clip}@{condition}"
            out.append(Prediction(model, row_id, REFERENCE, _hyp(count), "en",
                                  fields={"condition": condition}))
    return out


CLEAN = [0, 1, 0, 0, 2, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 3, 0]
NOISY = [2, 3, 1, 2, 4, 1, 3, 2, 1, 2, 3, 1, 2, 1, 2, 3, 1, 2, 5, 1]


def test_degradation_against_clean_is_paired_on_the_same_clips():
    """The change from clean to a condition pairs each clip with itself: its interval is
    the paired bootstrap's on those clips, not two separate intervals."""
    predictions = _rows("m", {"clean": CLEAN, "noise:snr=5": NOISY,
                              "telephone": CLEAN[::-1]})
    report = analysis_of(predictions, score_predictions(predictions))["conditions"]
    assert report["conditions"] == ["clean", "noise:snr=5", "telephone"]
    rows = {r["condition"]: r for r in report["rows"]}
    expected = paired_delta_interval(CLEAN, [7] * 20, NOISY, [7] * 20)
    noise = rows["noise:snr=5"]
    assert noise["clean_pairs"] == 20 and noise["samples"] == 20
    assert noise["delta_wer"] == pytest.approx(expected.value)
    assert noise["delta_wer"] == pytest.approx((sum(NOISY) - sum(CLEAN)) / 140)
    assert noise["delta_wer_ci"] == pytest.approx(expected.as_list())
    assert noise["degraded"] and noise["delta_wer_ci"][0] > 0
    assert (noise["name"], noise["parameter"], noise["severity"]) == ("noise", "snr", 5.0)
    phone = rows["telephone"]  # the same errors on other clips: no change overall
    assert phone["delta_wer"] == pytest.approx(0.0)
    assert phone["delta_wer_ci"][0] < 0 < phone["delta_wer_ci"][1] and not phone["degraded"]
    clean = rows["clean"]
    assert clean["wer"] == pytest.approx(sum(CLEAN) / 140) and clean["delta_wer"] is None
    assert clean["cer_ci"][0] <= clean["cer"] <= clean["cer_ci"][1]
    summary = report["models"]["m"]
    assert summary["mean_degradation"] == pytest.approx(noise["delta_wer"] / 2)
    figure = score_predictions(predictions)["m"].figures["wer_degradation"]
    assert figure == pytest.approx(summary["mean_degradation"])  # the registered figure
    assert summary["worst"]["condition"] == "noise:snr=5"


def test_the_snr_at_which_wer_doubles_is_interpolated_between_the_snrs_tested():
    points = [(20, 0.10), (10, 0.15), (5, 0.25), (0, 0.50)]
    assert snr_at_double_wer(points, 0.10) == (pytest.approx(7.5), "")
    assert snr_at_double_wer(points, 0.30) == (None, "not doubled down to 0 dB")
    assert snr_at_double_wer(points, 0.04) == (None, "doubled already at 20 dB")
    assert snr_at_double_wer(points, 0.0)[0] is None
    errors = {"clean": [1] * 20, "noise:snr=20": [1] * 20, "noise:snr=10": [1] * 10 + [2] * 10,
              "noise:snr=0": [3] * 20}
    predictions = _rows("m", errors)
    report = analysis_of(predictions, score_predictions(predictions))["conditions"]
    # WER 1/7 clean; 1.5/7 at 10 dB, 3/7 at 0 dB: 2/7 is reached at 10 - 0.5/1.5 * 10 dB.
    assert report["models"]["m"]["snr_doubling"]["noise"]["snr"] == pytest.approx(10 - 10 / 3)
    assert "noise: WER doubles at 6.7 dB SNR" in report["models"]["m"]["line"]


def test_a_candidate_gets_a_verdict_against_the_baseline_under_each_condition():
    """Better than the baseline under noise, the same on clean clips: the verdict says so
    per condition, and `--by condition` slices the same way through the record field."""
    base = _rows("base", {"clean": CLEAN, "noise:snr=5": NOISY})
    tuned = _rows("tuned", {"clean": CLEAN, "noise:snr=5": CLEAN})
    predictions = base + tuned
    report = analysis_of(predictions, score_predictions(predictions, "base"), ["condition"],
                         "base")
    verdicts = {r["condition"]: r["baseline"]["verdict"]
                for r in report["conditions"]["rows"] if r["model"] == "tuned"}
    assert verdicts == {"clean": "no significant difference", "noise:snr=5": "better"}
    assert all(r["baseline"] is None for r in report["conditions"]["rows"]
               if r["model"] == "base")
    sliced = {(r["value"], r["model"]): r for r in report["slices"]
              if r["column"] == "condition"}
    assert sliced[("noise:snr=5", "tuned")]["verdict"] == "better"
    assert sliced[("noise:snr=5", "base")]["samples"] == 20


def test_runs_without_conditions_have_no_conditions_report():
    plain = [Prediction("m", c, REFERENCE, _hyp(1), "en") for c in CLIPS]
    scores = score_predictions(plain)
    assert analysis_of(plain, scores)["conditions"] is None
    assert scores["m"].figures["wer_degradation"] is None

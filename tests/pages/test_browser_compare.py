"""The Compare page in a real browser: models scored on different clips, a cancelled model,
the upload limit, and titles that need no emoji font (issue 27, items 5, 7 and 8)."""

from __future__ import annotations

from core.demo_data import SENTENCES
from core.evaluation.summary import ModelSummary
from core.scoring import Prediction, score_predictions

import json
import re
from dataclasses import asdict

import pytest
from playwright.sync_api import expect

from tests.browser import chromium_page, grid_rows, streamlit_process

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Characters a machine without an emoji font draws as boxes (pictographs, the technical
# symbols ⏹ ⏯, emoji presentation).
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2300-\u23FF\u2B00-\u2BFF\uFE0F]")


def _sample(model: str, lang: str, index: int, hypothesis: str | None) -> dict:
    reference = SENTENCES[lang][index]
    return {"id": f"{lang}_{index:03d}", "model": model, "reference": reference,
            "hypothesis": hypothesis or "", "language": lang, "error": None,
            "skipped": hypothesis is None}


def _mixed_run(root) -> None:
    """One run of the English + French demo's first 4 + 4 clips: tiny.en skipped French and
    dropped a word of each English clip; base transcribed English perfectly and French
    badly; whisper:tiny was cancelled after the 4 English clips."""
    def drop_last(text: str) -> str:
        return " ".join(text.split()[:-1])

    rows = [_sample("faster-whisper:tiny.en", lang, i,
                    drop_last(SENTENCES[lang][i]) if lang == "en" else None)
            for lang in ("en", "fr") for i in range(4)]
    rows += [_sample("faster-whisper:base", lang, i,
                     SENTENCES[lang][i] if lang == "en" else "et bien bien la même chose")
             for lang in ("en", "fr") for i in range(4)]
    rows += [_sample("whisper:tiny", "en", i, SENTENCES["en"][i].replace("the", "a", 1))
             for i in range(4)]
    scores = score_predictions([Prediction(r["model"], r["id"], r["reference"],
                                           r["hypothesis"], r["language"])
                                for r in rows if not r["skipped"]])
    summaries = {}
    for model, status, expected in (("faster-whisper:tiny.en", "ok", 4),
                                    ("faster-whisper:base", "ok", 8),
                                    ("whisper:tiny", "cancelled", 8)):
        mine = [r for r in rows if r["model"] == model]
        skipped = sum(bool(r["skipped"]) for r in mine)
        s = scores[model]
        summaries[model] = asdict(ModelSummary(
            model=model, batch="b", status=status, samples=len(mine),
            succeeded=len(mine) - skipped, failures=0, success_rate=1.0, wer=s.wer, cer=s.cer,
            bleu=s.bleu, chrf=s.chrf, rtfx=10.0, mean_latency_s=0.5, band=None, batch_size=4,
            batch_curve=[], peak_rss_gb=0.5, peak_gpu_gb=None, load_seconds=1.0, error=None,
            skipped=skipped, wer_ci=s.wer_ci, timed=len(mine) - skipped, expected=expected))
    folder = root / "20260101-000000-mixd"
    folder.mkdir(parents=True)
    (folder / "plan.json").write_text("{}")
    (folder / "consolidated_results_20260101_000000.json").write_text(json.dumps({
        "run_id": folder.name, "dataset": str(root / "demo-en-fr" / "manifest.jsonl"),
        "samples": 8, "created": "20260101_000000", "models": summaries}))
    (folder / "consolidated_detailed_20260101_000000.json").write_text(json.dumps(
        {"normalizer": None, "samples": rows}))


def _order(rows: list[dict[str, str]]) -> list[str]:
    return [r["model"] for r in rows if r["model"] != "whisper:tiny"]


def test_browser_compare_warns_of_different_samples_and_rescores_on_the_common_ones(
        artifacts_dir, tmp_path):
    _mixed_run(tmp_path)
    with streamlit_process("ERT.py", env={"ERT_RUNS_DIR": str(tmp_path)},
                           log=artifacts_dir / "server-compare-common.log",
                           options=("--server.maxUploadSize", "7")) as (url, _), \
            chromium_page() as page:
        page.goto(f"{url}/Compare")
        page.get_by_text("Export CSV").wait_for(timeout=90_000)
        warning = page.get_by_test_id("stAlertContentWarning").filter(
            has_text="different samples")
        expect(warning).to_contain_text("faster-whisper:tiny.en on 4")
        expect(warning).to_contain_text("faster-whisper:base on 8")
        rows = grid_rows(page)
        # Sorted by WER over each model's own clips: tiny.en (English only) ranks first ...
        assert _order(rows) == ["faster-whisper:tiny.en", "faster-whisper:base"], rows
        cancelled = next(r for r in rows if r["model"] == "whisper:tiny")
        assert cancelled["status"] == "cancelled (4 of 8 done)", cancelled
        page.get_by_text("On the common samples (4 samples)").click()
        for _ in range(60):  # the page reruns: every model is now scored on the 4 clips
            rows = grid_rows(page)
            if {r["scored on"] for r in rows} == {"4"}:
                break
            page.wait_for_timeout(500)
        # ... and on the 4 clips both transcribed, base is better.
        assert _order(rows) == ["faster-whisper:base", "faster-whisper:tiny.en"], rows
        assert {r["scored on"] for r in rows} == {"4"}, rows
        assert float(next(r for r in rows if r["model"] == "faster-whisper:base")["WER %"]) == 0
        page.screenshot(path=str(artifacts_dir / "page-compare-common.png"), full_page=True)

        # No title, tab, page name or button needs an emoji font.
        shown = [*page.locator("h1").all_inner_texts(),
                 *page.get_by_test_id("stSidebarNav").locator("a").all_inner_texts(),
                 *page.get_by_role("tab").all_inner_texts(),
                 *page.get_by_role("button").all_inner_texts()]
        assert "Compare" in shown[0] and len(shown) > 6, shown
        assert not [text for text in shown if EMOJI.search(text)], shown

        # The upload limit is Streamlit's setting, stated once.
        page.get_by_role("tab", name="Upload audio").click()
        panel = page.get_by_role("tabpanel").filter(has=page.get_by_test_id("stFileUploader"))
        expect(panel.get_by_test_id("stFileUploaderDropzone")).to_contain_text("7MB")
        assert re.findall(r"\d+\s*MB", panel.inner_text()) == ["7MB"], panel.inner_text()
        assert page.get_by_test_id("stException").count() == 0

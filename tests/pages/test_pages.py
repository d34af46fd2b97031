"""The workbench pages through Streamlit's AppTest, over a real (small) evaluation run."""

from __future__ import annotations

from core.evaluation import runner
from core.evaluation.config import RunConfig

import io
import json
import re
import time

import numpy as np
import pytest
import soundfile
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """A results folder holding the demo set and one finished two-model run."""
    from core.demo_data import make_demo_dataset

    import os

    out = tmp_path_factory.mktemp("runs")
    manifest = make_demo_dataset(out / "demo-data", langs=("en",), count=3)
    runner.start(RunConfig(dataset=str(manifest), out_dir=str(out), use_cache=False,
                           models=["faster-whisper:tiny.en", "faster-whisper:base"]))
    previous = os.environ.get("ERT_RUNS_DIR")
    os.environ["ERT_RUNS_DIR"] = str(out)
    yield out
    if previous is None:
        os.environ.pop("ERT_RUNS_DIR", None)
    else:
        os.environ["ERT_RUNS_DIR"] = previous


def _page(name: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "pages" / name), default_timeout=240)
    at.run()
    assert not at.exception, at.exception
    return at


def _no_none_shown(at: AppTest) -> None:
    """No table or text shows a literal None: missing values are drawn as a dash."""
    for table in at.dataframe:
        frame = table.value
        assert not frame.isin(["None", "nan"]).any().any(), frame
        if frame.isna().any().any():
            assert table.proto.placeholder == "—", (list(frame.columns), frame)
    texts = [e.value for e in (*at.markdown, *at.caption, *at.info, *at.success, *at.error)]
    assert not [t for t in texts if re.search(r"\bNone\b", t)], texts


def _array(values) -> list:
    """A plotly figure's array, plain or typed (``{"dtype": "f8", "bdata": base64}``)."""
    import base64

    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


def _table_with(at: AppTest, column: str):
    return next(t.value for t in at.dataframe if column in t.value.columns)


def test_evaluation_page_shows_pickers_and_the_plan(runs_dir):
    at = _page("1_Evaluation.py")
    assert at.radio(key="dataset_kind").value == "Demo: English"
    assert "batch_1_light" in at.multiselect(key="eval_batches").options
    assert at.multiselect(key="eval_models").value == ["faster-whisper:tiny.en"]
    at.multiselect(key="eval_batches").set_value(["batch_1_light"]).run()
    assert not at.exception, at.exception
    plan = at.dataframe[0].value
    assert list(plan["batch"]) == ["batch_1_light", "custom"]
    assert any(m.label == "Strategy" for m in at.metric)
    assert any(m.label == "Estimated time" for m in at.metric)
    assert at.selectbox(key="eval_run_choice").options  # the fixture run is listed
    assert any("**demo-data**" in c.value for c in at.caption)  # not manifest.jsonl


def test_evaluation_page_says_what_the_finished_run_measured(runs_dir):
    at = _page("1_Evaluation.py")
    (bar,) = at.get("progress")
    assert bar.proto.text == "finished · 3 samples × 2 models · 6 of 6 done", bar.proto.text
    progress = _table_with(at, "progress")
    assert list(progress["samples"]) == ["3 of 3", "3 of 3"]
    results = _table_with(at, "WER %")
    for label in ("WER %", "WER 95 % interval", "CER %", "BLEU", "chrF", "RTFx", "success %",
                  "timed", "cached", "failed", "skipped", "peak RAM GB"):
        assert label in results.columns, list(results.columns)
    assert not {"wer", "rtfx", "peak_rss_gb", "success_rate"} & set(results.columns)
    assert results["WER %"].between(0, 100).all() and (results["success %"] == 100).all()
    assert (results["timed"] + results["cached"] == 3).all()
    assert all(re.fullmatch(r"\d+\.\d( on \d+ of \d+ clips)?|— \(all cached.*\)", r)
               for r in results["RTFx"]), list(results["RTFx"])
    title = at.selectbox(key="eval_run_choice")
    assert "demo-data · 2 models" in title.format_func(title.value)
    _no_none_shown(at)


def test_evaluation_page_makes_the_demo_set_on_first_use(runs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ERT_RUNS_DIR", str(tmp_path / "fresh"))
    started = time.monotonic()
    at = _page("1_Evaluation.py")  # no click: the demo set is generated and planned
    assert time.monotonic() - started < 120
    assert (tmp_path / "fresh" / "demo-data" / "manifest.jsonl").exists()
    assert not [b for b in at.button if "Generate" in b.label]
    plan = at.dataframe[0].value  # each model named with its figure: "… · 0.29 GB (estimated)"
    assert [m.split(" · ")[0] for m in plan["models"]] == ["faster-whisper:tiny.en"]
    samples = next(m for m in at.metric if m.label == "Samples")
    assert samples.value == "10"


def test_evaluation_page_reports_a_bad_manifest_clearly(runs_dir):
    at = _page("1_Evaluation.py")
    at.radio(key="dataset_kind").set_value("Manifest file").run()
    at.text_input[0].set_value(str(runs_dir / "missing.jsonl")).run()
    assert not at.exception, at.exception
    assert at.error and "missing.jsonl" in at.error[0].value


def test_monitor_page_mounts_its_live_chart_and_lists_recorded_stats(runs_dir):
    at = _page("2_Monitor.py")
    assert not at.exception, at.exception
    assert at.session_state["monitor_interval"] == 1.0
    assert at.selectbox  # recorded memory_stats files of the fixture run
    assert not at.metric  # the tiles are drawn by the chart component, without delta arrows


def test_compare_page_tables_deltas_and_per_sample_view(runs_dir):
    at = _page("3_Compare.py")
    table = at.dataframe[0].value
    assert set(table["model"]) == {"faster-whisper:tiny.en", "faster-whisper:base"}
    for label in ("WER %", "WER 95 % interval", "CER %", "BLEU", "chrF", "RTFx", "success %",
                  "peak RAM GB", "timed", "cached", "failed", "skipped"):
        assert label in table.columns, list(table.columns)
    assert not {"wer", "cer", "bleu", "chrf", "peak_rss_gb", "success_rate", "label"} & set(
        table.columns)
    columns = list(table.columns)
    assert columns.index("decoding") > columns.index("peak RAM GB")  # long ones after metrics
    assert table["WER %"].notna().all() and table["WER %"].between(0, 100).all()
    for wer, interval in zip(table["WER %"], table["WER 95 % interval"], strict=True):
        low, high = map(float, interval.split("–"))
        assert low - 0.05 <= wer <= high + 0.05  # both in percent
    assert (table["success %"] == 100).all()
    picker = at.multiselect(key="cmp_runs")
    assert "demo-data · 3 samples" in picker.format_func(picker.value[0])
    deltas = {m.label: m.value for m in at.metric}
    assert {"WER", "CER", "BLEU", "chrF"} <= set(deltas)
    assert re.fullmatch(r"\d+\.\d %", deltas["WER"]) and re.fullmatch(r"\d+\.\d %",
                                                                      deltas["CER"])
    language = _table_with(at, "baseline WER %")
    assert "baseline_wer" not in language.columns and language["candidate WER %"].max() <= 100
    _no_none_shown(at)
    # The baseline-vs-candidate verdict, with its interval (3 clips: never significant).
    verdicts = [e.value for e in (*at.info, *at.success, *at.error)
                if "95 % interval" in e.value]
    assert verdicts and "no significant difference" in verdicts[0], verdicts
    # The WER chart draws the interval as error bars.
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [c["layout"]["title"]["text"] for c in charts]
    assert sorted(titles) == sorted(["WER %", "CER %", "BLEU", "RTFx", "success %",
                                     "peak RAM GB"]), titles
    wer_chart = charts[titles.index("WER %")]
    assert all(trace["error_y"]["array"] for trace in wer_chart["data"])
    assert wer_chart["layout"]["xaxis"]["title"]["text"] == "model · run"
    assert wer_chart["layout"]["yaxis"]["title"]["text"] == "WER %"
    assert 0 < max(y for trace in wer_chart["data"] for y in _array(trace["y"])) <= 100
    html = " ".join(m.value for m in at.markdown)
    assert "Reference" in html and "faster-whisper:tiny.en" in html


def test_upload_comparison_transcribes_a_generated_wav(runs_dir):
    from core.demo_data import synthesize

    audio = synthesize("the quick brown fox jumps over the lazy dog", "en")
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, 16000, format="WAV")
    at = _page("3_Compare.py")
    at.file_uploader(key="cmp_upload").set_value(("fox.wav", buffer.getvalue(), "audio/wav"))
    at.multiselect(key="upload_models").set_value(["faster-whisper:tiny.en",
                                                   "faster-whisper:base"])
    at.text_input(key="upload_reference").set_value("the quick brown fox jumps over the lazy dog")
    at.run()
    at.button[-1].click().run()
    assert not at.exception, at.exception
    results = [c.value for c in at.caption if " · WER " in c.value and "RTFx" in c.value]
    assert len(results) == 2
    texts = " ".join(m.value for m in at.markdown).lower()
    assert "fox" in texts


def test_upload_comparison_rejects_a_non_audio_file(runs_dir):
    at = _page("3_Compare.py")
    at.file_uploader(key="cmp_upload").set_value(("notes.wav", b"just some text, not audio",
                                                  "audio/wav")).run()
    at.button[-1].click().run()
    assert not at.exception, at.exception
    assert at.error and "notes.wav" in at.error[0].value


def _upload_silence(models: list[str], no_speech_filter: bool = False) -> AppTest:
    """The upload tab after transcribing one second of digital silence with ``models``."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(16000, dtype=np.float32), 16000, format="WAV")
    at = _page("3_Compare.py")
    at.file_uploader(key="cmp_upload").set_value(("silence.wav", buffer.getvalue(),
                                                  "audio/wav"))
    at.multiselect(key="upload_models").set_value(models)
    at.checkbox(key="upload_no_speech").set_value(no_speech_filter)
    at.run()
    at.button[-1].click().run()
    assert not at.exception, at.exception
    return at


def _model_results(at: AppTest) -> dict[str, dict[str, list[str]]]:
    """Each model's result column: its transcript lines, captions and errors."""
    results = {}
    for col in at.columns:
        lines = [m.value for m in col.markdown]
        if lines and lines[0].startswith("**") and lines[0].endswith("**"):
            results[lines[0].strip("*")] = {"text": lines[1:],
                                           "captions": [c.value for c in col.caption],
                                           "errors": [e.value for e in col.error]}
    return results


SILENCE_MODELS = ["faster-whisper:tiny.en", "faster-whisper:base"]


def test_silence_upload_is_not_an_error(runs_dir):
    # transcribe_clip turns every failure into an error result, so a failure shows as an
    # error element, never as an exception: look for those.
    at = _upload_silence(SILENCE_MODELS)
    assert not at.error, [e.value for e in at.error]
    results = _model_results(at)
    assert set(results) == set(SILENCE_MODELS), results
    for model, shown in results.items():
        assert not shown["errors"], (model, shown)
        assert len(shown["text"]) == 1, (model, shown)  # a transcript, even if empty
        assert shown["captions"] and " s" in shown["captions"][0], (model, shown)
        assert "WER" not in shown["captions"][0]  # no reference typed: no WER


def _no_words(line: str) -> bool:
    from core.metrics import normalize

    return line == "∅ (no speech recognised)" or not normalize(line, "en").split()


@pytest.mark.parametrize("model", [
    "faster-whisper:tiny.en",
    pytest.param("faster-whisper:base", marks=pytest.mark.xfail(
        strict=True, reason="faster-whisper:base hallucinates 'you' on digital silence with "
        "the no-speech filter off (the default: it changes what is measured)")),
])
def test_silence_upload_shows_no_speech(runs_dir, model):
    results = _model_results(_upload_silence([model]))
    assert list(results) == [model]
    (line,) = results[model]["text"]
    assert _no_words(line), f"{model} transcribed silence as {line!r}"


def test_the_no_speech_filter_keeps_base_silent_on_silence(runs_dir):
    """The strict xfail above, with the opt-in filter on: base writes nothing."""
    results = _model_results(_upload_silence(["faster-whisper:base"], no_speech_filter=True))
    (line,) = results["faster-whisper:base"]["text"]
    assert _no_words(line), f"base transcribed silence as {line!r} with the filter on"


def _scored_run(root, run_id: str, models: dict[str, dict]) -> None:
    """A run folder with consolidated results only, as one copied from another machine."""
    from core.evaluation.summary import ModelSummary

    from dataclasses import asdict

    folder = root / run_id
    folder.mkdir(parents=True)
    (folder / "plan.json").write_text("{}")
    base = dict(batch="b", status="ok", samples=4, succeeded=4, failures=0, success_rate=1.0,
                wer=0.2, cer=0.1, bleu=50.0, chrf=60.0, rtfx=10.0, mean_latency_s=0.5,
                band="good", batch_size=2, batch_curve=[], peak_rss_gb=0.8, peak_gpu_gb=None,
                load_seconds=1.0, error=None, wer_ci=[0.1, 0.3], timed=4, cached=0)
    (folder / "consolidated_results_20260101_000000.json").write_text(json.dumps({
        "run_id": run_id, "dataset": "hf:google/fleurs:fr_fr:test", "samples": 4,
        "created": "20260101_000000",
        "models": {m: asdict(ModelSummary(model=m, **{**base, **kw}))
                   for m, kw in models.items()}}))


def test_compare_page_shows_languages_and_never_draws_a_missing_figure_as_zero(
        runs_dir, tmp_path, monkeypatch):
    languages = {lang: {"language": lang, "samples": 2, "wer": wer, "cer": wer / 2,
                        "wer_ci": [wer / 2, wer * 2]} for lang, wer in (("en", 0.1),
                                                                       ("fr", 0.3))}
    _scored_run(tmp_path, "20260101-000000-aaaa", {
        "one": {"languages": languages},
        "cached": {"rtfx": None, "timed": 0, "cached": 4, "peak_rss_gb": None,
                   "languages": languages}})
    monkeypatch.setenv("ERT_RUNS_DIR", str(tmp_path))
    at = _page("3_Compare.py")
    picker = at.multiselect(key="cmp_runs")
    assert "google/fleurs (fr_fr, test) · 4 samples" in picker.format_func(picker.value[0])
    table = at.dataframe[0].value.set_index("model")
    assert table.loc["cached", "RTFx"] == "— (all cached)"
    assert table.loc["one", "RTFx"] == "10.0"
    per_language = _table_with(at, "language")
    assert list(zip(per_language["model"], per_language["language"], strict=True)) == [
        ("one", "en"), ("one", "fr"), ("cached", "en"), ("cached", "fr")]
    assert list(per_language["WER %"]) == pytest.approx([10.0, 30.0, 10.0, 30.0])
    assert list(per_language["WER 95 % interval"])[:2] == ["5.0–20.0", "15.0–60.0"]
    charts = {json.loads(c.proto.spec)["layout"]["title"]["text"]: json.loads(c.proto.spec)
              for c in at.get("plotly_chart")}
    for title in ("RTFx", "peak RAM GB"):  # only "one" has a bar; "cached" is named instead
        bars = [x for trace in charts[title]["data"] for x in _array(trace["x"])]
        assert bars == ["one · aaaa"], (title, bars)
    assert any("No RTFx bar for cached · aaaa — (all cached)" in c.value for c in at.caption)
    assert "run" not in table.columns  # one run: the picker names it
    _no_none_shown(at)


def test_evaluation_page_offers_a_ray_cluster_as_where_to_run(runs_dir):
    at = _page("1_Evaluation.py")
    assert "eval_cluster" not in at.session_state  # this machine: no address asked
    at.radio(key="eval_run_on").set_value("Ray cluster").run()
    assert not at.exception, at.exception
    assert at.text_input(key="eval_cluster").value == "auto"


def test_monitor_page_lists_the_cluster_nodes_of_a_running_ray_run(runs_dir):
    from core.evaluation.run_dir import RunDir, run_dirs

    run = next(iter(run_dirs(runs_dir)))
    assert run.acquire() is None  # "running": its lock holds a live pid (this one)
    try:
        RunDir(run.path).write_cluster([
            {"node": "a1b2c3", "address": "10.0.0.1", "alive": True, "cpus": 32.0,
             "memory_gb": 200.0, "gpus": 4.0},
            {"node": "d4e5f6", "address": "10.0.0.2", "alive": False, "cpus": 32.0,
             "memory_gb": 200.0, "gpus": 4.0}])
        for i, (host, ram) in enumerate((("10.0.0.1", 41.5), ("10.0.0.2", None)), 1):
            load = {"cpu_pct": 12.0, "ram_pct": ram, "gpu_used_gb": [20.5],
                    "gpu_total_gb": [80.0]} if ram else None
            (run.path / f"status_shard{i}.json").write_text(json.dumps({
                "shard": f"{i}/2", "node": host, "device": "cuda:0", "model": "whisper:x",
                "done": 10 * i, "total": 50, "host_load": load}))
        at = _page("2_Monitor.py")
        assert not at.exception, at.exception
        assert any(h.value == "Cluster" for h in at.subheader)
        table = at.dataframe[0].value
        assert list(table["address"]) == ["10.0.0.1", "10.0.0.2"] and list(table["GPUs"]) == [4, 4]
        assert any(h.value == "Workers" for h in at.subheader)
        workers = at.dataframe[1].value
        assert list(workers["host RAM %"].fillna(-1)) == [41.5, -1]  # blank before a first step
        assert list(workers["GPU GB used/total"].fillna("")) == ["20.5/80", ""]
        _no_none_shown(at)
    finally:
        for path in run.path.glob("status_shard*.json"):
            path.unlink()
        run.release()


def test_no_title_icon_or_button_needs_an_emoji_font():
    """Issue 27: a machine without an emoji font drew the page titles ("📊 ASR evaluation")
    and buttons ("⏹ Cancel") with boxes. Every string given to a title, a page icon, a button,
    a tab or a toggle in the pages is checked (icons come from Streamlit's own Material font)."""
    import ast

    emoji = re.compile("[\U0001F000-\U0001FAFF\u2300-\u23FF\u2B00-\u2BFF\uFE0F]")
    shown_by = {"title", "header", "subheader", "set_page_config", "button", "tabs",
                "toggle", "download_button", "form_submit_button", "page_link"}
    found = []
    for path in [REPO / "ERT.py", *sorted((REPO / "pages").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in shown_by:
                for part in ast.walk(node):
                    if isinstance(part, ast.Constant) and isinstance(part.value, str) and \
                            emoji.search(part.value):
                        found.append(f"{path.name}:{part.lineno} {part.value!r}")
    assert not found, found


def test_plan_against_run_is_a_table_that_wraps_its_long_cells(runs_dir):
    """Issue 27: "memory: planned … · time: planned …" was cut at the column's edge in a
    dataframe; a table wraps it."""
    at = _page("1_Evaluation.py")
    (table,) = [t.value for t in at.table if "plan vs run" in t.value.columns]
    assert len(table) == 2 and table["plan vs run"].str.contains(
        r"^memory: planned .* · time: planned .*, took \d+ s$").all(), table
    assert not [t for t in at.dataframe if "plan vs run" in t.value.columns]


def test_each_demo_set_starts_with_the_model_that_suits_its_clips(runs_dir):
    """Issue 27: the one demo set was half French, and the English-only tiny.en, the
    default, skipped 7 clips of 10."""
    from core.demo_data import make_demo_dataset

    make_demo_dataset(runs_dir / "demo-en-fr", langs=("en", "fr"), count=2)
    at = _page("1_Evaluation.py")
    assert at.multiselect(key="eval_models").value == ["faster-whisper:tiny.en"]
    at.radio(key="dataset_kind").set_value("Demo: English + French").run()
    assert not at.exception, at.exception
    assert at.multiselect(key="eval_models").value == ["faster-whisper:base"]
    assert any("**demo-en-fr**" in c.value and "near 100 %" in c.value for c in at.caption)
    assert not [w.value for w in at.warning if "not transcribe" in w.value or "skip" in w.value]
    at.radio(key="dataset_kind").set_value("Demo: English").run()
    assert at.multiselect(key="eval_models").value == ["faster-whisper:tiny.en"]

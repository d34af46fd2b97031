"""The run's comparison PNG (core.evaluation.charts): written, robust, WER error bars."""

from __future__ import annotations

from core.evaluation.charts import VALUE_GID, draw_chart, write_chart
from core.evaluation.summary import ModelSummary

import matplotlib

matplotlib.use("Agg")
import matplotlib.axes
import matplotlib.figure
import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _summary(model: str, samples: int = 10, wer: float | None = 0.2,
             wer_ci: list[float] | None = None, **kw) -> ModelSummary:
    values = dict(model=model, batch="b", status="ok", samples=samples, succeeded=samples,
                  failures=0, success_rate=1.0, wer=wer, cer=None if wer is None else wer / 2,
                  bleu=None if wer is None else 60.0, chrf=None, rtfx=12.0,
                  mean_latency_s=0.1, band=None, batch_size=4, batch_curve=[],
                  peak_rss_gb=0.5, peak_gpu_gb=None, load_seconds=1.0, error=None,
                  wer_ci=wer_ci)
    values.update(kw)
    return ModelSummary(**values)


@pytest.fixture
def captured(monkeypatch):
    """Every barh call's (labels, values, xerr), bar_label's texts, text annotations and
    suptitle, still drawn for real."""
    calls: dict[str, list] = {"barh": [], "suptitle": [], "bar_label": [], "text": []}
    barh, suptitle = matplotlib.axes.Axes.barh, matplotlib.figure.Figure.suptitle
    bar_label, text = matplotlib.axes.Axes.bar_label, matplotlib.axes.Axes.text

    def spy_barh(self, y, width, *args, **kwargs):
        calls["barh"].append((list(y), list(width), kwargs.get("xerr")))
        return barh(self, y, width, *args, **kwargs)

    def spy_bar_label(self, container, *args, **kwargs):
        texts = bar_label(self, container, *args, **kwargs)
        calls["bar_label"].append((self.get_title(), [t.get_text() for t in texts]))
        return texts

    def spy_text(self, x, y, s, *args, **kwargs):
        calls["text"].append((x, y, s))
        return text(self, x, y, s, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "bar_label", spy_bar_label)
    monkeypatch.setattr(matplotlib.axes.Axes, "text", spy_text)

    def spy_suptitle(self, t, *args, **kwargs):
        calls["suptitle"].append(t)
        return suptitle(self, t, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "barh", spy_barh)
    monkeypatch.setattr(matplotlib.figure.Figure, "suptitle", spy_suptitle)
    return calls


def test_write_chart_writes_a_png_of_the_models(tmp_path, captured):
    path = tmp_path / "comparison_20260101_000000.png"
    summaries = {"whisper:tiny": _summary("whisper:tiny", wer=0.3, wer_ci=[0.2, 0.4]),
                 "whisper:base": _summary("whisper:base", wer=0.1, wer_ci=[0.05, 0.15])}
    assert write_chart(path, "20260101-000000-ab12", summaries) == path
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 10_000
    assert len(captured["barh"]) == 4  # WER, BLEU, speed, success
    for labels, _, _ in captured["barh"]:
        assert labels == ["whisper:tiny", "whisper:base"]
    wer_values = captured["barh"][0][1]
    assert wer_values == pytest.approx([30.0, 10.0])  # WER drawn in percent


def test_write_chart_titles_the_figure_with_the_run(tmp_path, captured):
    write_chart(tmp_path / "c.png", "20260101-000000-ab12",
                {"m": _summary("m", wer=0.2, wer_ci=[0.1, 0.3])})
    assert captured["suptitle"] and "20260101-000000-ab12" in captured["suptitle"][-1]


def test_write_chart_draws_nothing_when_no_model_has_a_sample(tmp_path):
    path = tmp_path / "c.png"
    summaries = {"refused": ModelSummary.refused("refused", "over budget"),
                 "empty": _summary("empty", samples=0, wer=None)}
    assert write_chart(path, "run", summaries) is None
    assert not path.exists()
    assert write_chart(path, "run", {}) is None


def test_a_model_without_wer_gets_no_bar_but_a_dash(tmp_path, captured):
    path = tmp_path / "c.png"
    summaries = {"failed": _summary("failed", samples=5, wer=None, wer_ci=None, succeeded=0,
                                    failures=5, success_rate=0.0, rtfx=None),
                 "ok": _summary("ok", wer=0.25, wer_ci=[0.2, 0.3])}
    assert write_chart(path, "run", summaries) == path
    assert path.read_bytes()[:8] == PNG_MAGIC
    labels, values, xerr = captured["barh"][0]
    assert labels == ["ok"] and values == pytest.approx([25.0])  # no bar at 0 for "failed"
    assert xerr[0] == pytest.approx([5.0]) and xerr[1] == pytest.approx([5.0])
    assert (0, 0, " —") in captured["text"]  # "failed" is the first row: a dash there


def _values(fig) -> dict[str, list]:
    """Each panel's value texts (by its title), in the figure as drawn."""
    return {ax.get_title(): [t for t in ax.texts if t.get_gid() == VALUE_GID]
            for ax in fig.axes}


def test_a_model_without_rtfx_draws_no_bar_labelled_zero(captured):
    summaries = {"cached": _summary("cached", rtfx=None, timed=0, cached=10),
                 "fast": _summary("fast", rtfx=12.0, timed=6, cached=4)}
    values = _values(draw_chart("run", summaries))
    speed = [[t.get_text() for t in texts] for title, texts in values.items()
             if title.startswith("RTFx")]
    assert speed == [["12.0 on 6 of 10 clips"]]  # one bar, for "fast" only
    assert all(t.get_text() != "0.0" for texts in values.values() for t in texts)
    assert (0, 0, " — (all cached)") in captured["text"]
    titles = list(values)
    assert titles[0].startswith("WER %") and any(t.startswith("success %") for t in titles)


def test_each_value_is_written_at_its_bar_not_its_error_bar_and_inside_the_panel():
    """Issue 27: "18.8" was drawn at 54.5, the end of its interval, and "7.6 on 32 of 40
    clips" ran past the axes."""
    summaries = {"tiny.en": _summary("tiny.en", wer=0.188, wer_ci=[0.0, 0.545], rtfx=0.9,
                                     timed=32, cached=8),
                 "base": _summary("base", wer=0.95, wer_ci=[0.6, 2.61], rtfx=12.0,
                                  timed=40, cached=0)}
    fig = draw_chart("run", summaries)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        bars = sorted(p.get_width() for p in ax.patches)
        texts = [t for t in ax.texts if t.get_gid() == VALUE_GID]
        assert len(texts) == 2, ax.get_title()
        panel = ax.get_window_extent(renderer)
        for text in texts:
            assert min(abs(text.get_position()[0] - b) for b in bars) < 1e-9, (
                ax.get_title(), text.get_text(), text.get_position(), bars)
            box = text.get_window_extent(renderer)
            assert panel.x0 <= box.x0 and box.x1 <= panel.x1, (ax.get_title(),
                                                              text.get_text())
    wer = next(ax for ax in fig.axes if ax.get_title().startswith("WER"))
    assert sorted(t.get_text() for t in wer.texts if t.get_gid() == VALUE_GID) == \
        ["18.8", "95.0"]


def test_wer_error_bars_span_the_95_percent_interval(tmp_path, captured):
    summaries = {"a": _summary("a", wer=0.30, wer_ci=[0.22, 0.41]),
                 "b": _summary("b", wer=0.10, wer_ci=None)}
    write_chart(tmp_path / "c.png", "run", summaries)
    (_, values, xerr), *others = captured["barh"]
    assert values == pytest.approx([30.0, 10.0])
    lower, upper = xerr
    assert lower == pytest.approx([8.0, 0.0])  # 30 - 22; b has no interval
    assert upper == pytest.approx([11.0, 0.0])  # 41 - 30
    assert all(x is None for _, _, x in others)  # only the WER panel has error bars


def test_a_wider_interval_changes_the_picture(tmp_path):
    narrow, wide = tmp_path / "narrow.png", tmp_path / "wide.png"
    write_chart(narrow, "run", {"m": _summary("m", wer=0.3, wer_ci=[0.29, 0.31])})
    write_chart(wide, "run", {"m": _summary("m", wer=0.3, wer_ci=[0.1, 0.6])})
    same = tmp_path / "same.png"
    write_chart(same, "run", {"m": _summary("m", wer=0.3, wer_ci=[0.29, 0.31])})
    assert narrow.read_bytes() == same.read_bytes()  # deterministic, so the next line means it
    assert narrow.read_bytes() != wide.read_bytes()

"""PNG charts comparing a run's models (WER, BLEU, speed, success), with matplotlib."""

from __future__ import annotations

from core.evaluation.summary import speed_label
from core.files import write_atomic
from core.phrasing import MISSING

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.evaluation.summary import ModelSummary

# (field, title with its unit, scale from the stored fraction or figure)
CHARTS = (("wer", "WER % (lower is better)", 100.0), ("bleu", "BLEU (higher is better)", 1.0),
          ("rtfx", "RTFx, audio s per compute s (higher is faster)", 1.0),
          ("success_rate", "success % (higher is better)", 100.0))


def plotting() -> Any:
    """matplotlib's pyplot, drawing to files (no display). Imported on first use (0.6 s),
    which a GPU run's runner does while its workers decode (:mod:`core.evaluation.results`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


BAR_COLOR = "#4C78A8"
LABEL_PAD_POINTS = 3.0  # between a bar's end and its value
VALUE_GID = "bar-value"  # the value texts, for whoever inspects the figure


def save_png(fig: Any, path: Path) -> Path:
    """``fig`` as a PNG at ``path``, replaced in one rename (a reader never sees half of
    it), and closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format="png")
    plotting().close(fig)
    write_atomic(path, buffer.getvalue())
    return path


def write_chart(path: Path, title: str, summaries: dict[str, ModelSummary]) -> Path | None:
    """One PNG of the models' WER (with its interval), BLEU, speed and success; None when
    no model has a sample (:func:`draw_chart`)."""
    fig = draw_chart(title, summaries)
    return None if fig is None else save_png(fig, path)


def draw_chart(title: str, summaries: dict[str, ModelSummary]) -> Any:
    """The figure of :func:`write_chart`, laid out; None when no model has a sample. A missing
    figure gets no bar but a dash, so it never reads as 0. Each value is written at its bar's
    end, never at its error bar's (issue 27: "18.8" was drawn at 54.5), and every text stays
    inside its panel."""
    plt = plotting()
    models = [m for m, s in summaries.items() if s.samples]
    if not models:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    values_of: dict[Any, list[tuple[float, Any]]] = {}
    for ax, (field, heading, scale) in zip(axes.flat, CHARTS, strict=True):
        ax.yaxis.update_units(models)  # every model keeps its row, with a bar or not
        shown = [m for m in models if getattr(summaries[m], field) is not None]
        values = [getattr(summaries[m], field) * scale for m in shown]
        xerr = None
        if field == "wer":  # the 95 % bootstrap interval as error bars
            cis = [summaries[m].wer_ci or [summaries[m].wer] * 2 for m in shown]
            xerr = [[max(v - lo * scale, 0.0) for v, (lo, _) in zip(values, cis, strict=True)],
                    [max(hi * scale - v, 0.0) for v, (_, hi) in zip(values, cis, strict=True)]]
            heading += " · 95 % interval"
        ax.set_title(heading)
        values_of[ax] = []
        if shown:
            ax.barh(shown, values, color=BAR_COLOR, xerr=xerr, capsize=3,
                    error_kw={"ecolor": "#333333", "elinewidth": 1})
            labels = ([speed_label(summaries[m]) for m in shown] if field == "rtfx" else
                      [f"{v:.1f}" for v in values])
            for model, value, label in zip(shown, values, labels, strict=True):
                text = ax.text(value, models.index(model), label, va="center", fontsize=8,
                               zorder=4)
                text.set_gid(VALUE_GID)
                values_of[ax].append((value, text))
        for row, model in enumerate(models):
            if model not in shown:
                note = speed_label(summaries[model]) if field == "rtfx" else MISSING
                ax.text(0, row, f" {note}", va="center", fontsize=8, color="#666666")
        ax.set_ylim(len(models) - 0.5, -0.5)  # first model on top
        ax.set_xlim(left=0)
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(f"ERT evaluation — {title}")
    fig.tight_layout()
    for ax, placed in values_of.items():
        _place_values(fig, ax, placed)
    return fig


def _place_values(fig: Any, ax: Any, placed: list[tuple[float, Any]]) -> None:
    """Each value inside its bar's end where it fits (white on the bar), else just past it
    on a white ground (both over the error bar, which would cross the digits); the x axis
    widened until every value past its bar ends inside the panel."""
    from matplotlib.transforms import offset_copy

    if not placed:
        return
    renderer = fig.canvas.get_renderer()
    pad_px = LABEL_PAD_POINTS * fig.dpi / 72
    widths = [text.get_window_extent(renderer).width + 3 * pad_px for _, text in placed]
    for attempt in range(5):  # a wider axis shrinks the bars: a value may have to move out
        xmax, panel_px = ax.get_xlim()[1], ax.bbox.width
        inside = [value / xmax * panel_px >= width
                  for (value, _), width in zip(placed, widths, strict=True)]
        needed = max([xmax] + [value / max(1 - width / panel_px, 0.05) for (value, _), width,
                               fits in zip(placed, widths, inside, strict=True) if not fits])
        if needed <= xmax or attempt == 4:
            break
        ax.set_xlim(0, needed * 1.02)
    for (_, text), fits in zip(placed, inside, strict=True):
        text.set_ha("right" if fits else "left")
        text.set_color("white" if fits else "#222222")
        text.set_bbox({"facecolor": BAR_COLOR if fits else "white", "edgecolor": "none",
                       "pad": 1.0})  # hides the error bar where the value is
        text.set_transform(offset_copy(ax.transData, fig=fig, units="points",
                                       x=-LABEL_PAD_POINTS if fits else LABEL_PAD_POINTS))

"""PNG charts comparing a run's models (WER, BLEU, speed, success), with matplotlib."""

from __future__ import annotations

from core.evaluation.summary import speed_label

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


def write_chart(path: Path, title: str, summaries: dict[str, ModelSummary]) -> Path | None:
    """One PNG of the models' WER (with its interval), BLEU, speed and success; None when
    no model has a sample. A missing figure gets no bar but a dash, so it never reads as 0."""
    plt = plotting()
    models = [m for m, s in summaries.items() if s.samples]
    if not models:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
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
        if shown:
            bars = ax.barh(shown, values, color="#4C78A8", xerr=xerr, capsize=3)
            labels = ([speed_label(summaries[m]) for m in shown] if field == "rtfx" else
                      [f"{v:.1f}" for v in values])
            ax.bar_label(bars, labels=labels, padding=3, fontsize=8)
        for row, model in enumerate(models):
            if model not in shown:
                note = speed_label(summaries[model]) if field == "rtfx" else "—"
                ax.text(0, row, f" {note}", va="center", fontsize=8, color="#666666")
        ax.set_ylim(len(models) - 0.5, -0.5)  # first model on top
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(f"ERT evaluation — {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""PNG charts comparing a run's models (WER, BLEU, speed, success), with matplotlib."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.evaluation.summary import ModelSummary

CHARTS = (("wer", "WER (lower is better)", 100.0), ("bleu", "BLEU (higher is better)", 1.0),
          ("rtfx", "Speed, RTFx (higher is faster)", 1.0),
          ("success_rate", "Success rate %", 100.0))


def write_chart(path: Path, title: str, summaries: dict[str, ModelSummary]) -> Path | None:
    """One PNG of the models' WER (with its interval), BLEU, speed and success; None when
    no model has a sample."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m, s in summaries.items() if s.samples]
    if not models:
        return None
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for ax, (field, heading, scale) in zip(axes.flat, CHARTS, strict=True):
        values = [(getattr(summaries[m], field) or 0.0) * scale for m in models]
        xerr = None
        if field == "wer":  # the 95 % bootstrap interval as error bars
            cis = [summaries[m].wer_ci or [summaries[m].wer or 0.0] * 2 for m in models]
            xerr = [[max(v - lo * scale, 0.0) for v, (lo, _) in zip(values, cis, strict=True)],
                    [max(hi * scale - v, 0.0) for v, (_, hi) in zip(values, cis, strict=True)]]
            heading += " · 95 % interval"
        bars = ax.barh(models, values, color="#4C78A8", xerr=xerr, capsize=3)
        ax.bar_label(bars, fmt="%.1f", padding=3, fontsize=8)
        ax.set_title(heading)
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(f"ERT evaluation — {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

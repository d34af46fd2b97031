"""The robustness chart of a run with conditions: WER against severity, per condition.

One panel per condition that has severities (``noise``, ``reverb``, …): a line per model
through its WER at each severity, its 95 % interval shaded, and its clean WER as a dashed
line of the same colour. Conditions without a severity (``telephone``) share one panel,
a point and error bar per model. SNRs run from clean to noisy, left to right. Drawn from
the ``conditions`` report (:func:`core.robustness.report`), with matplotlib like
:mod:`core.evaluation.charts`.
"""

from __future__ import annotations

from core.conditions import CLEAN
from core.evaluation.charts import plotting, save_png

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PANEL_COLUMNS = 3
OTHER = "without severity"


def draw_condition_chart(title: str, conditions: Mapping[str, Any]) -> Any:
    """The figure (None when the report has no condition but clean)."""
    plt = plotting()
    rows = [r for r in conditions.get("rows", []) if r["condition"] != CLEAN]
    if not rows:
        return None
    models = list(dict.fromkeys(r["model"] for r in conditions["rows"]))
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(models)}
    clean = {r["model"]: r for r in conditions["rows"] if r["condition"] == CLEAN}
    names = list(dict.fromkeys(r["name"] if r["severity"] is not None else OTHER
                               for r in rows))
    columns = min(PANEL_COLUMNS, len(names))
    lines = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4.6 * columns, 3.4 * lines),
                             squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        if name == OTHER:
            _draw_other(ax, [r for r in rows if r["severity"] is None], models, colours)
        else:
            _draw_severities(ax, [r for r in rows if r["name"] == name and
                                  r["severity"] is not None], models, colours, clean)
        ax.set_ylabel("WER %")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], color=colours[m], marker="o", label=m) for m in models]
    handles.append(plt.Line2D([], [], color="#555555", linestyle="--", label="clean"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=8,
               frameon=False)
    fig.suptitle(f"ERT robustness — {title} · WER against severity · 95 % intervals")
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return fig


def _draw_severities(ax: Any, rows: list[dict[str, Any]], models: list[str],
                     colours: Mapping[str, Any], clean: Mapping[str, dict[str, Any]]) -> None:
    parameter = rows[0]["parameter"]
    for model in models:
        mine = sorted((r for r in rows if r["model"] == model), key=lambda r: r["severity"])
        if not mine:
            continue
        x = [r["severity"] for r in mine]
        y = [100 * r["wer"] for r in mine]
        ax.plot(x, y, marker="o", color=colours[model], linewidth=1.5)
        cis = [r["wer_ci"] or [r["wer"]] * 2 for r in mine]
        ax.fill_between(x, [100 * lo for lo, _ in cis], [100 * hi for _, hi in cis],
                        color=colours[model], alpha=0.18, linewidth=0)
        if model in clean:
            ax.axhline(100 * clean[model]["wer"], color=colours[model], linestyle="--",
                       linewidth=1)
    if parameter == "snr":
        ax.invert_xaxis()  # clean to noisy, left to right
    ax.set_title(f"{rows[0]['name']}", fontsize=10)
    ax.set_xlabel(parameter or "")
    ax.set_ylim(bottom=0)


def _draw_other(ax: Any, rows: list[dict[str, Any]], models: list[str],
                colours: Mapping[str, Any]) -> None:
    labels = list(dict.fromkeys(r["condition"] for r in rows))
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        mine = {r["condition"]: r for r in rows if r["model"] == model}
        xs = [j - 0.4 + width * (i + 0.5) for j, c in enumerate(labels) if c in mine]
        shown = [mine[c] for c in labels if c in mine]
        values = [100 * r["wer"] for r in shown]
        cis = [r["wer_ci"] or [r["wer"]] * 2 for r in shown]
        ax.errorbar(xs, values, yerr=[[max(v - 100 * lo, 0) for v, (lo, _) in
                                       zip(values, cis, strict=True)],
                                      [max(100 * hi - v, 0) for v, (_, hi) in
                                       zip(values, cis, strict=True)]],
                    fmt="o", color=colours[model], capsize=3)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_title(OTHER, fontsize=10)
    ax.set_ylim(bottom=0)


def write_condition_chart(path: Path, title: str, conditions: Mapping[str, Any]
                          ) -> Path | None:
    """:func:`draw_condition_chart` as a PNG at ``path``; None when there is nothing to
    draw."""
    fig = draw_condition_chart(title, conditions)
    return None if fig is None else save_png(fig, path)

"""A model version's report: one self-contained HTML page of its holdout evidence, to look at.

Pure: arrays and numbers in, HTML text out, no database and no model objects. The plots are
drawn with matplotlib (imported when a report is rendered, so the trainer does not pay for it at
start) and inlined as SVG: the page has no script and fetches nothing, so it opens offline, from
a file, and the same from the registry, the worker or `retrainer models report`.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

CHALLENGER_COLOUR: Final = "#1f5fa8"
CHAMPION_COLOUR: Final = "#d9730d"
THRESHOLD_COLOUR: Final = "#222222"
MUTED: Final = "#8a8f98"
PSI_WATCH: Final = 0.1
"""PSI from which a feature's shift is worth a look."""
PSI_SHIFTED: Final = 0.2
"""PSI from which a feature has shifted (the drift trigger's default)."""
TOP_FEATURES: Final = 15
"""Most features the importance plot shows, largest first."""
CALIBRATION_BINS: Final = 10
HISTOGRAM_BINS: Final = 30

_FIGURE_SIZE: Final = (6.4, 4.4)
_STYLE: Final[dict[str, Any]] = {
    "font.size": 10.5,
    "axes.titlesize": 12.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 10.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.8,
    "legend.fontsize": 9.5,
    "legend.frameon": False,
    "svg.fonttype": "none",
}
"""matplotlib settings for every figure; text stays text (searchable, read by screen readers)."""


@dataclass(frozen=True)
class ReportInputs:
    """Everything a version's report shows, as plain values.

    `truth` and the score arrays are aligned on the holdout rows (NaN truth = unlabelled row);
    `champion_scores`, when given, are the champion's scores of the same rows.
    """

    version: str
    family: str
    truth: FloatArray
    challenger_scores: FloatArray
    threshold: float
    metrics: Mapping[str, float]
    promoted: bool
    decision: str
    """The gate's reason, as recorded with the version."""
    samples: int
    """Training rows."""
    data_start: datetime | None
    data_cutoff: datetime
    score_label: str = "score"
    """What the challenger's scores are (e.g. "P(delinquent)", "anomaly score")."""
    probabilities: bool = True
    """Whether the challenger's scores are probabilities (a calibration plot makes sense)."""
    champion_version: str | None = None
    champion_scores: FloatArray | None = None
    champion_score_label: str | None = None
    feature_names: tuple[str, ...] = ()
    importances: tuple[float, ...] | None = None
    importance_kind: str = ""
    """What the importances measure, or (with no importances) why there are none."""
    drift: Mapping[str, float] | None = None
    """PSI per feature of the training window against the champion's reference, if computed."""
    trained_at: datetime | None = None
    notes: tuple[str, ...] = ()
    extra_rows: tuple[tuple[str, str], ...] = field(default=())
    """More (label, value) rows for the headline table."""

    def __post_init__(self) -> None:
        rows = len(self.truth)
        if len(self.challenger_scores) != rows:
            raise ValueError(
                f"{len(self.challenger_scores)} challenger scores for {rows} holdout rows"
            )
        if self.champion_scores is not None and len(self.champion_scores) != rows:
            raise ValueError(f"{len(self.champion_scores)} champion scores for {rows} holdout rows")
        if self.importances is not None and len(self.importances) != len(self.feature_names):
            raise ValueError(
                f"{len(self.importances)} importances for {len(self.feature_names)} features"
            )


@dataclass(frozen=True)
class _Labelled:
    """The holdout's labelled rows: truth as booleans and each model's scores of them."""

    truth: BoolArray
    challenger: FloatArray
    champion: FloatArray | None

    @classmethod
    def of(cls, inputs: ReportInputs) -> _Labelled:
        truth = np.asarray(inputs.truth, dtype=np.float64)
        scores = np.asarray(inputs.challenger_scores, dtype=np.float64)
        keep = ~np.isnan(truth) & np.isfinite(scores)
        champion = None
        if inputs.champion_scores is not None:
            champion_all = np.asarray(inputs.champion_scores, dtype=np.float64)
            keep &= np.isfinite(champion_all)
            champion = champion_all[keep]
        return cls(truth[keep] >= 0.5, scores[keep], champion)

    @property
    def positives(self) -> int:
        return int(self.truth.sum())

    @property
    def both_classes(self) -> bool:
        return 0 < self.positives < len(self.truth)

    def gap(self) -> str | None:
        """Why curves cannot be drawn from these rows, or None."""
        if len(self.truth) == 0:
            return "no labelled holdout"
        if self.positives == 0:
            return f"no labelled holdout positives (0 of {len(self.truth)})"
        if self.positives == len(self.truth):
            return f"no labelled holdout negatives ({self.positives} of {len(self.truth)})"
        return None


# --- the page ------------------------------------------------------------------------------------


def warm_up() -> None:
    """Import the plotting code ahead of the first report (seconds on a busy machine), so the
    first training does not pay for it while it holds its family's registry lock."""
    import matplotlib.backends.backend_svg
    import matplotlib.figure  # noqa: F401


def render_report(inputs: ReportInputs) -> str:
    """The version's report as one HTML document (plots inlined as SVG; no script, no URL)."""
    import matplotlib as mpl

    labelled = _Labelled.of(inputs)
    with mpl.rc_context(_STYLE):  # type: ignore[arg-type]  # keys are checked at run time
        figures = [
            ("roc", "ROC curve", _roc),
            ("pr", "Precision and recall", _precision_recall),
            ("calibration", "Calibration", _calibration),
            ("scores", "Score distributions", _distributions),
            ("confusion", "Confusion matrix", _confusion),
            ("importance", "Feature importance", _importance),
        ]
        panels = [
            _panel(name, title, _svg(name, draw(inputs, labelled))) for name, title, draw in figures
        ]
        drift_plot = _panel("drift", "Drift", _svg("drift", _drift(inputs))) if inputs.drift else ""
    return _PAGE.format(
        title=_e(f"Model report {inputs.version}"),
        version=_e(inputs.version),
        family=_e(inputs.family),
        badge=_badge(inputs),
        decision=_e(inputs.decision),
        headline=_headline(inputs, labelled),
        notes=_notes(inputs),
        panels="\n".join(panels),
        drift=f'<section class="grid">{drift_plot}<div>{_drift_table(inputs.drift)}</div></section>'
        if drift_plot
        else _drift_table(inputs.drift),
        css=_CSS,
    )


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _badge(inputs: ReportInputs) -> str:
    word, css = ("promoted", "promoted") if inputs.promoted else ("not promoted", "rejected")
    return f'<span class="badge {css}">{word}</span>'


def _figure(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "n/a"


def _headline(inputs: ReportInputs, labelled: _Labelled) -> str:
    metrics = inputs.metrics
    figures = [
        ("AUC", _figure(metrics.get("auc"))),
        ("precision", _figure(metrics.get("precision"))),
        ("recall", _figure(metrics.get("recall"))),
        ("F1", _figure(metrics.get("f1"))),
    ]
    cards = "".join(
        f'<div class="card"><div class="value">{_e(v)}</div><div class="label">{_e(k)}</div></div>'
        for k, v in figures
    )
    champion_auc = metrics.get("champion_auc")
    rows: list[tuple[str, str]] = [
        ("decision threshold", f"{_figure(inputs.threshold)} ({inputs.score_label})"),
        (
            "holdout",
            f"{len(inputs.truth)} rows, {len(labelled.truth)} labelled, "
            f"{labelled.positives} positive",
        ),
        ("training samples", str(inputs.samples)),
        ("data window", f"{_when(inputs.data_start)} to {_when(inputs.data_cutoff)}"),
        (
            "champion compared",
            "none"
            if inputs.champion_version is None
            else f"{inputs.champion_version}"
            + (f" (AUC {_figure(champion_auc)} on this holdout)" if champion_auc else ""),
        ),
        ("trained", _when(inputs.trained_at)),
        *inputs.extra_rows,
    ]
    table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    caption = "at the decision threshold" if labelled.both_classes else (labelled.gap() or "")
    return (
        f'<div class="cards">{cards}</div><p class="caption">Precision, recall and F1 {_e(caption)}'
        f'.</p><table class="facts">{table}</table>'
    )


def _notes(inputs: ReportInputs) -> str:
    if not inputs.notes:
        return ""
    items = "".join(f"<li>{_e(note)}</li>" for note in inputs.notes)
    return f'<ul class="notes">{items}</ul>'


def _panel(name: str, title: str, svg: str) -> str:
    return f'<figure class="panel" id="{name}" aria-label="{_e(title)}">{svg}</figure>'


def _drift_table(drift: Mapping[str, float] | None) -> str:
    if drift is None:
        return (
            "<p>Drift of the training window against the champion's reference was not computed "
            "for this version.</p>"
        )
    if not drift:
        return "<p>Drift: no feature could be compared with the champion's reference.</p>"
    rows = "".join(
        f'<tr><th>{_e(name)}</th><td class="{_psi_class(psi)}">{_figure(psi)}</td></tr>'
        for name, psi in sorted(drift.items(), key=lambda item: -_sortable(item[1]))
    )
    return (
        f'<p class="caption">PSI of the training window against the champion\'s reference: '
        f"below {PSI_WATCH} stable, from {PSI_SHIFTED} shifted.</p>"
        '<table class="facts drift"><tr><th>feature</th><th>PSI</th></tr>'
        f"{rows}</table>"
    )


def _sortable(value: float) -> float:
    return value if math.isfinite(value) else -1.0


def _psi_class(psi: float) -> str:
    if not math.isfinite(psi) or psi < PSI_WATCH:
        return "ok"
    return "watch" if psi < PSI_SHIFTED else "shifted"


# --- figures -------------------------------------------------------------------------------------

Draw = Callable[[ReportInputs, _Labelled], "Figure"]
_SVG_START = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_SVG_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_SVG_ID = re.compile(r'\bid="([^"]+)"')
_SVG_REFERENCE = re.compile(r"""(href="#|url\(#)([^")]+)""")
_NO_METADATA: Final[dict[str, Any]] = {"Date": None, "Creator": None, "Format": None, "Type": None}
"""No timestamp (the same inputs draw the same page) and no RDF block of addresses."""


def _new_figure() -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=_FIGURE_SIZE, layout="constrained")
    return figure, figure.add_subplot()


def _svg(name: str, figure: Figure) -> str:
    """`figure` as an inline <svg> element whose ids cannot clash with another figure's."""
    import matplotlib as mpl

    buffer = io.StringIO()
    with mpl.rc_context({"svg.hashsalt": f"report-{name}"}):
        figure.savefig(buffer, format="svg", metadata=_NO_METADATA)
    # The XML prolog and DOCTYPE (with its DTD address) are not wanted inside HTML.
    svg = _SVG_START.sub("", buffer.getvalue(), count=1)
    svg = _SVG_METADATA.sub("", svg, count=1)
    # Each figure defines the same glyphs (and its own clip paths): one page needs unique ids.
    svg = _SVG_ID.sub(lambda found: f'id="{name}-{found[1]}"', svg)
    svg = _SVG_REFERENCE.sub(lambda found: f"{found[1]}{name}-{found[2]}", svg)
    return svg.replace("<svg ", f'<svg role="img" class="plot plot-{name}" ', 1)


def _message(figure: Figure, axes: Axes, title: str, message: str) -> Figure:
    """A panel that says why there is no plot, in the place the plot would be."""
    axes.set_axis_off()
    axes.set_title(title)
    axes.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        fontsize=13,
        color=MUTED,
        wrap=True,
        transform=axes.transAxes,
    )
    return figure


def _at_threshold(truth: BoolArray, scores: FloatArray, threshold: float) -> dict[str, float]:
    flagged = scores >= threshold
    tp = float(np.sum(flagged & truth))
    fp = float(np.sum(flagged & ~truth))
    positives = float(truth.sum())
    negatives = float(len(truth) - positives)
    return {
        "tpr": tp / positives if positives else math.nan,
        "fpr": fp / negatives if negatives else math.nan,
        "precision": tp / (tp + fp) if tp + fp else math.nan,
    }


def _models(inputs: ReportInputs, labelled: _Labelled) -> list[tuple[str, FloatArray, str]]:
    """(legend name, scores of the labelled rows, colour) of the challenger and the champion."""
    found = [(f"challenger {inputs.version}", labelled.challenger, CHALLENGER_COLOUR)]
    if labelled.champion is not None:
        found.append((f"champion {inputs.champion_version}", labelled.champion, CHAMPION_COLOUR))
    return found


def _roc(inputs: ReportInputs, labelled: _Labelled) -> Figure:
    from sklearn.metrics import roc_auc_score, roc_curve

    figure, axes = _new_figure()
    title = "ROC curve (holdout)"
    gap = labelled.gap()
    if gap is not None:
        return _message(figure, axes, title, f"{gap}:\nno ROC curve")
    for name, scores, colour in _models(inputs, labelled):
        fpr, tpr, _ = roc_curve(labelled.truth, scores)
        auc = roc_auc_score(labelled.truth, scores)
        axes.plot(fpr, tpr, color=colour, linewidth=2, label=f"{name} (AUC {auc:.3f})")
    point = _at_threshold(labelled.truth, labelled.challenger, inputs.threshold)
    axes.plot(
        point["fpr"],
        point["tpr"],
        "o",
        markersize=9,
        color=THRESHOLD_COLOUR,
        zorder=5,
        label=f"threshold {inputs.threshold:.3g}",
    )
    axes.plot([0, 1], [0, 1], linestyle="--", color=MUTED, linewidth=1, label="chance")
    axes.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), title=title)
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate (recall)")
    axes.legend(loc="lower right")
    return figure


def _precision_recall(inputs: ReportInputs, labelled: _Labelled) -> Figure:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    figure, axes = _new_figure()
    title = "Precision–recall curve (holdout)"
    gap = labelled.gap()
    if gap is not None:
        return _message(figure, axes, title, f"{gap}:\nno precision–recall curve")
    for name, scores, colour in _models(inputs, labelled):
        precision, recall, _ = precision_recall_curve(labelled.truth, scores)
        average = average_precision_score(labelled.truth, scores)
        axes.step(
            recall,
            precision,
            where="post",
            color=colour,
            linewidth=2,
            label=f"{name} (AP {average:.3f})",
        )
    point = _at_threshold(labelled.truth, labelled.challenger, inputs.threshold)
    if math.isfinite(point["precision"]):
        axes.plot(
            point["tpr"],
            point["precision"],
            "o",
            markersize=9,
            color=THRESHOLD_COLOUR,
            zorder=5,
            label=f"threshold {inputs.threshold:.3g}",
        )
    base_rate = labelled.positives / len(labelled.truth)
    axes.axhline(base_rate, linestyle="--", color=MUTED, linewidth=1, label="positive rate")
    axes.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.03), title=title)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.legend(loc="best")
    return figure


def _calibration(inputs: ReportInputs, labelled: _Labelled) -> Figure:
    figure, axes = _new_figure()
    title = "Calibration (reliability)"
    if not inputs.probabilities:
        return _message(
            figure, axes, title, f"{inputs.score_label} is not a probability:\nno calibration"
        )
    if len(labelled.truth) == 0:
        return _message(figure, axes, title, "no labelled holdout")
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    shown_models = [
        model
        for model in _models(inputs, labelled)
        if model[0].startswith("challenger")
        or inputs.champion_score_label in (None, "")
        or inputs.champion_score_label == inputs.score_label
    ]
    for name, scores, colour in shown_models:
        bins = np.clip(np.digitize(scores, edges[1:-1]), 0, CALIBRATION_BINS - 1)
        counts = np.bincount(bins, minlength=CALIBRATION_BINS)
        filled = counts > 0
        predicted = np.bincount(bins, weights=scores, minlength=CALIBRATION_BINS)[filled]
        observed = np.bincount(bins, weights=labelled.truth.astype(np.float64), minlength=10)
        mean_predicted = predicted / counts[filled]
        rate = observed[filled] / counts[filled]
        sizes = 20 + 180 * counts[filled] / counts.max()
        axes.plot(mean_predicted, rate, color=colour, linewidth=1.5, label=name)
        axes.scatter(mean_predicted, rate, s=sizes, color=colour, alpha=0.8, zorder=4)
    axes.plot([0, 1], [0, 1], linestyle="--", color=MUTED, linewidth=1, label="perfect")
    axes.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), title=title)
    axes.set_xlabel(f"mean predicted {inputs.score_label} (10 bins; dot size = rows)")
    axes.set_ylabel("observed positive rate")
    axes.legend(loc="upper left")
    return figure


def _distributions(inputs: ReportInputs, labelled: _Labelled) -> Figure:
    figure, axes = _new_figure()
    title = "Score distributions (whole holdout)"
    challenger = np.asarray(inputs.challenger_scores, dtype=np.float64)
    challenger = challenger[np.isfinite(challenger)]
    if len(challenger) == 0:
        return _message(figure, axes, title, "no holdout rows")
    series = [(f"challenger {inputs.version}", challenger, CHALLENGER_COLOUR)]
    same_scale = inputs.champion_score_label in (None, inputs.score_label)
    if inputs.champion_scores is not None and same_scale:
        champion = np.asarray(inputs.champion_scores, dtype=np.float64)
        series.append(
            (
                f"champion {inputs.champion_version}",
                champion[np.isfinite(champion)],
                CHAMPION_COLOUR,
            )
        )
    low = min(float(s.min()) for _, s, _ in series)
    high = max(float(s.max()) for _, s, _ in series)
    if inputs.probabilities:
        low, high = 0.0, 1.0
    elif high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    for index, (name, scores, colour) in enumerate(series):
        label = f"{name} ({len(scores)} rows)"
        # The challenger filled, the champion as an outline over it: both stay readable.
        axes.hist(
            scores,
            bins=list(edges),
            color=colour,
            histtype="stepfilled" if index == 0 else "step",
            alpha=0.4 if index == 0 else 1.0,
            linewidth=2,
            label=label,
        )
    axes.axvline(
        inputs.threshold,
        color=THRESHOLD_COLOUR,
        linestyle="--",
        linewidth=1.5,
        label=f"threshold {inputs.threshold:.3g}",
    )
    axes.set_title(title)
    axes.set_xlabel(inputs.score_label)
    axes.set_ylabel("holdout rows")
    if inputs.champion_scores is not None and not same_scale:
        axes.text(
            0.99,
            0.80,
            f"champion scores {inputs.champion_score_label}:\nnot on this scale",
            transform=axes.transAxes,
            ha="right",
            va="top",
            color=MUTED,
            fontsize=9,
        )
    axes.legend(loc="upper right")
    return figure


def _confusion(inputs: ReportInputs, labelled: _Labelled) -> Figure:
    figure, axes = _new_figure()
    title = f"Confusion matrix at threshold {inputs.threshold:.3g}"
    if len(labelled.truth) == 0:
        return _message(figure, axes, title, "no labelled holdout")
    flagged = labelled.challenger >= inputs.threshold
    truth = labelled.truth
    cells = np.array(
        [
            [np.sum(~truth & ~flagged), np.sum(~truth & flagged)],
            [np.sum(truth & ~flagged), np.sum(truth & flagged)],
        ],
        dtype=np.int64,
    )
    axes.grid(False)
    axes.imshow(cells, cmap="Blues", vmin=0, vmax=max(int(cells.max()), 1))
    total = int(cells.sum())
    names = [["true negative", "false positive"], ["false negative", "true positive"]]
    for row in range(2):
        for column in range(2):
            count = int(cells[row, column])
            dark = count > 0.55 * cells.max()
            axes.text(
                column,
                row,
                f"{count}\n{names[row][column]}\n{100 * count / total:.1f} %",
                ha="center",
                va="center",
                fontsize=12,
                color="white" if dark else "#1b2733",
            )
    axes.set_xticks([0, 1], ["not flagged", "flagged"])
    axes.set_yticks([0, 1], ["negative", "positive"])
    axes.set_xlabel("challenger's decision")
    axes.set_ylabel("label")
    axes.set_title(title)
    return figure


def _importance(inputs: ReportInputs, labelled: _Labelled) -> Figure:
    figure, axes = _new_figure()
    title = "Feature importance"
    values = inputs.importances
    if values is None or not inputs.feature_names or not np.isfinite(values).all():
        return _message(figure, axes, title, inputs.importance_kind or "no importances")
    total = float(sum(values))
    if total <= 0:
        return _message(figure, axes, title, f"{inputs.importance_kind}: all zero")
    ranked = sorted(zip(inputs.feature_names, values, strict=True), key=lambda pair: -pair[1])
    shown = ranked[:TOP_FEATURES][::-1]
    shares = [100 * value / total for _, value in shown]
    positions = np.arange(len(shown))
    axes.barh(positions, shares, color=CHALLENGER_COLOUR, height=0.7)
    axes.set_yticks(positions, [name for name, _ in shown])
    axes.tick_params(axis="y", labelsize=9.5 if len(shown) > 10 else 10.5)
    axes.grid(axis="y", visible=False)
    for position, share in zip(positions, shares, strict=True):
        axes.annotate(
            f"{share:.1f} %",
            (share, float(position)),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
            color="#333333",
        )
    axes.set_xlim(0, max(shares) * 1.18)
    axes.set_xlabel(f"share of {inputs.importance_kind} (%)")
    hidden = len(ranked) - len(shown)
    axes.set_title(title + (f" (top {len(shown)}, {hidden} more)" if hidden else ""))
    return figure


def _drift(inputs: ReportInputs) -> Figure:
    figure, axes = _new_figure()
    drift = inputs.drift or {}
    ranked = sorted(drift.items(), key=lambda item: -_sortable(item[1]))[:TOP_FEATURES][::-1]
    psi = [value if math.isfinite(value) else 0.0 for _, value in ranked]
    colours = [
        {"ok": "#3b8c4a", "watch": "#d9a70d", "shifted": "#c0392b"}[_psi_class(v)] for v in psi
    ]
    positions = np.arange(len(ranked))
    axes.barh(positions, psi, color=colours, height=0.7)
    axes.set_yticks(positions, [name for name, _ in ranked])
    axes.grid(axis="y", visible=False)
    axes.axvline(PSI_WATCH, color=MUTED, linestyle=":", linewidth=1.2, label=f"{PSI_WATCH} watch")
    axes.axvline(PSI_SHIFTED, color="#c0392b", linestyle="--", linewidth=1.2, label="0.2 shifted")
    axes.set_xlim(0, max([*psi, PSI_SHIFTED]) * 1.15)
    axes.set_xlabel("PSI, training window vs the champion's reference")
    axes.set_title("Drift per feature (PSI)")
    axes.legend(loc="lower right")
    return figure


_CSS: Final = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f6f8; color: #1b2733;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 28px 40px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header .family { color: #5a6470; font-size: 16px; }
.badge { display: inline-block; margin-left: 10px; padding: 2px 10px; border-radius: 12px;
  font-size: 14px; font-weight: 600; vertical-align: middle; }
.badge.promoted { background: #dff3e4; color: #1d6b34; }
.badge.rejected { background: #fbe3e0; color: #9b2a1c; }
.decision { margin: 10px 0 18px; padding: 10px 14px; background: #fff; border-left: 4px solid
  #1f5fa8; border-radius: 4px; }
.cards { display: flex; gap: 14px; flex-wrap: wrap; }
.card { flex: 1 1 140px; background: #fff; border-radius: 8px; padding: 12px 16px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.card .value { font-size: 28px; font-weight: 700; color: #1f5fa8; }
.card .label { color: #5a6470; }
.caption { color: #5a6470; font-size: 13px; margin: 6px 0 14px; }
table.facts.drift { min-width: 100%; margin-top: 0; font-size: 14px; }
table.facts { border-collapse: collapse; background: #fff; border-radius: 8px; min-width: 60%;
  margin-top: 12px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
table.facts th, table.facts td { text-align: left; padding: 5px 14px;
  border-bottom: 1px solid #edf0f3; }
table.facts th { color: #5a6470; font-weight: 600; white-space: nowrap; }
td.ok { color: #1d6b34; } td.watch { color: #8a6500; } td.shifted { color: #9b2a1c;
  font-weight: 700; }
.notes { color: #5a6470; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 18px;
  margin-top: 20px; }
.panel { margin: 0; background: #fff; border-radius: 8px; padding: 8px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.panel svg { display: block; width: 100%; height: auto; }
h2 { font-size: 19px; margin: 28px 0 10px; }
footer { margin-top: 28px; color: #8a8f98; font-size: 12px; }
"""

_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<main>
<header>
<h1>{version}{badge}</h1>
<div class="family">{family}</div>
</header>
<p class="decision"><strong>Gate:</strong> {decision}</p>
{headline}
{notes}
<section class="grid">
{panels}
</section>
<h2>Drift of the training window</h2>
{drift}
<footer>Generated by retrainer from the version's holdout; self-contained (no scripts, no
external resources).</footer>
</main>
</body>
</html>
"""

"""Report figures with matplotlib (Agg, no pyplot state): stacked label shares, heatmaps, bars.

Every figure is a PNG data URL with alt text; values are printed on bars and cells, so a
figure reads without colour. Colours come from one ``Palette`` per report.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from t2iaudit.report import fmt
from t2iaudit.report.palette import Palette, text_colour

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

FONT = 8
MAX_NAME = 48


class Figure(BaseModel):
    """One rendered figure."""

    model_config = ConfigDict(frozen=True)

    id: str
    """Element id in the report (anchor)."""
    title: str
    uri: str
    """``data:image/png;base64,...``"""
    alt: str
    """What the figure shows, in words (for screen readers and when images are off)."""
    caption: str = ""


class ShareBar(BaseModel):
    """One prompt's label shares for a stacked bar."""

    model_config = ConfigDict(frozen=True)

    name: str
    shares: dict[str, tuple[float, float | None, float | None]]
    """Label -> (share, ci_low, ci_high)."""
    reference: dict[str, float] | None = None
    n: int = 0
    n_unknown: int = 0


class Bar(BaseModel):
    """One bar with its interval."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    colour: str = "#0072B2"


def _figure(
    width: float, height: float, left: float = 0.3, right: float = 0.3, top: float = 0.45, bottom: float = 0.5
) -> MplFigure:
    """A figure with fixed margins in inches (no layout engine: it costs more than the drawing)."""
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height)
    return fig


def _label_margin(names: list[str]) -> float:
    """Inches needed left of the axes for tick labels of ``names`` at the figure font size."""
    return 0.3 + 0.066 * max([len(n) for n in names] + [4])


def to_data_url(fig: MplFigure) -> str:
    """PNG bytes of ``fig`` as a data URL (the figure is then discarded)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = canvas.buffer_rgba()
    # Charts are flat colours and anti-aliased text: a 128-colour palette PNG looks the same
    # at a third of the size, which keeps a report with many figures small.
    im = Image.frombuffer("RGBA", (rgba.shape[1], rgba.shape[0]), rgba, "raw", "RGBA", 0, 1).convert("RGB")
    out = io.BytesIO()
    im.quantize(colors=128, method=Image.Quantize.FASTOCTREE).save(out, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def _short(name: str) -> str:
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"


def _title(fig: MplFigure, title: str) -> None:
    fig.text(0.01, 1 - 0.06 / fig.get_figheight(), title, fontsize=FONT + 1, ha="left", va="top")


def stacked_shares(
    fig_id: str, title: str, bars: list[ShareBar], labels: list[str], palette: Palette, caption: str = ""
) -> Figure:
    """Horizontal stacked bars of label shares per prompt, with intervals and references.

    Each label's interval is drawn as a black line where its segment ends (the segment could
    end anywhere on it); a thin pale strip under a bar is the prompt's reference
    distribution; dotted lines mark the uniform shares. One drawing call per label, so a
    figure of 40 prompts costs about as much as one of 4.
    """
    import numpy as np

    names = [f"{_short(b.name)} (n={b.n})" for b in bars]
    height = 1.15 + 0.42 * len(bars)
    fig = _figure(8.5, height, left=_label_margin(names), top=0.6)
    ax = fig.add_subplot()
    k, m = len(labels), len(bars)
    y = np.arange(m)[::-1].astype(float)
    value = np.array([[b.shares.get(lab, (0.0, None, None))[0] or 0.0 for lab in labels] for b in bars]).reshape(m, k)
    low = np.array([[_nan(b.shares.get(lab, (0.0, None, None))[1]) for lab in labels] for b in bars]).reshape(m, k)
    high = np.array([[_nan(b.shares.get(lab, (0.0, None, None))[2]) for lab in labels] for b in bars]).reshape(m, k)
    start = np.cumsum(value, axis=1) - value
    has_ref = np.array([b.reference is not None for b in bars])
    ref = np.array([[float((b.reference or {}).get(lab, 0.0)) for lab in labels] for b in bars]).reshape(m, k)
    ref_start = np.cumsum(ref, axis=1) - ref
    for j, label in enumerate(labels):
        colour = palette[label]
        ax.barh(y, value[:, j], left=start[:, j], height=0.62, color=colour, edgecolor="white", linewidth=0.5)
        if has_ref.any():
            ax.barh(
                y[has_ref] - 0.42,
                ref[has_ref, j],
                left=ref_start[has_ref, j],
                height=0.16,
                color=colour,
                alpha=0.5,
                edgecolor="white",
                linewidth=0,
            )
        ink = text_colour(colour)
        for i in range(m):
            v = value[i, j]
            if v >= 0.06:
                text = f"{label} {fmt.pct(v)}" if v >= 0.14 else fmt.pct(v)
                ax.text(
                    start[i, j] + v / 2,
                    y[i],
                    text,
                    ha="center",
                    va="center",
                    fontsize=FONT - (1 if v >= 0.14 else 2),
                    color=ink,
                )
        if j < k - 1:  # the last segment's end is always 1: its interval is the others'
            ok = np.isfinite(low[:, j]) & np.isfinite(high[:, j])
            ax.errorbar(
                (start[ok, j] + (low[ok, j] + high[ok, j]) / 2),
                y[ok] + 0.22,
                xerr=(high[ok, j] - low[ok, j]) / 2,
                fmt="none",
                ecolor="black",
                elinewidth=0.9,
                capsize=2,
            )
    for j in range(1, k):
        ax.axvline(j / k, color="#555555", linestyle=":", linewidth=0.8)
    ax.set_yticks(y, names, fontsize=FONT)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.7, m - 0.5)
    ax.set_xlabel("share of labelled images (unknowns left out)", fontsize=FONT)
    ax.tick_params(axis="x", labelsize=FONT)
    _title(fig, title)
    _legend(ax, labels, palette, reference=bool(has_ref.any()))
    alt = f"{title}. Stacked bars, one per prompt: " + "; ".join(
        f"{b.name}: " + ", ".join(f"{lab} {fmt.pct(b.shares.get(lab, (0.0, None, None))[0])}" for lab in labels)
        for b in bars[:12]
    )
    if len(bars) > 12:
        alt += f"; and {len(bars) - 12} more prompts"
    return Figure(id=fig_id, title=title, uri=to_data_url(fig), alt=alt + ".", caption=caption)


def _nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def _legend(ax: Any, labels: list[str], palette: Palette, reference: bool) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=palette[label], label=label) for label in labels]
    if reference:
        handles.append(Patch(facecolor="#bbbbbb", label="reference (thin strip)"))
    ax.legend(
        handles=handles,
        fontsize=FONT - 1,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        frameon=False,
        ncol=len(handles),
        borderaxespad=0.2,
        handlelength=1.2,
        columnspacing=1.0,
    )


def heatmap(
    fig_id: str,
    title: str,
    rows: list[str],
    columns: list[str],
    values: list[list[float | None]],
    caption: str = "",
    vmax: float | None = None,
    percent: bool = False,
) -> Figure:
    """A heatmap with every value printed in its cell (blank cells: no value)."""
    import numpy as np

    grid = np.array([[np.nan if v is None else float(v) for v in row] for row in values], dtype=float)
    names = [_short(r) for r in rows]
    width = min(_label_margin(names) + 1.6 + 1.1 * len(columns), 10.0)
    fig = _figure(width, 1.6 + 0.3 * len(rows), left=_label_margin(names), right=1.0, top=0.45, bottom=1.0)
    ax = fig.add_subplot()
    top = vmax if vmax is not None else (float(np.nanmax(grid)) if np.isfinite(grid).any() else 1.0)
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="Blues", vmin=0.0, vmax=max(top, 1e-9), aspect="auto")
    for (i, j), v in np.ndenumerate(grid):
        if np.isfinite(v):
            shade = image.cmap(image.norm(v))
            colour = "white" if 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] < 0.55 else "black"
            ax.text(
                j, i, fmt.pct(v) if percent else fmt.num(v), ha="center", va="center", fontsize=FONT - 1, color=colour
            )
    ax.set_xticks(range(len(columns)), [_short(c) for c in columns], fontsize=FONT, rotation=20, ha="right")
    ax.set_yticks(range(len(rows)), names, fontsize=FONT)
    _title(fig, _wrap(title, int(width * 14)))
    fig.colorbar(image, ax=ax, fraction=0.25 / width * 4, pad=0.02).ax.tick_params(labelsize=FONT - 1)
    cells = [
        f"{r} / {c}: {fmt.pct(v) if percent else fmt.num(v)}"
        for r, row in zip(rows, values)
        for c, v in zip(columns, row)
        if v is not None
    ]
    alt = f"{title}. Heatmap of {len(rows)} rows by {len(columns)} columns: " + "; ".join(cells[:30])
    if len(cells) > 30:
        alt += f"; and {len(cells) - 30} more cells"
    return Figure(id=fig_id, title=title, uri=to_data_url(fig), alt=alt + ".", caption=caption)


def _hbars(ax: Any, y: Any, items: list[Bar], height: float, **style: Any) -> None:
    """One bar per item at ``y`` with its interval whisker (one drawing call for all)."""
    import numpy as np

    value = np.array([b.value or 0.0 for b in items], dtype=float)
    ax.barh(y, value, height=height, color=[b.colour for b in items], **style)
    ok = np.array([b.ci_low is not None and b.ci_high is not None for b in items], dtype=bool)
    if ok.any():
        low = np.array([b.ci_low for b, k in zip(items, ok) if k], dtype=float)
        high = np.array([b.ci_high for b, k in zip(items, ok) if k], dtype=float)
        ax.errorbar(
            (low + high) / 2,
            np.asarray(y)[ok],
            xerr=(high - low) / 2,
            fmt="none",
            ecolor="black",
            elinewidth=0.8,
            capsize=2,
        )


def bars(
    fig_id: str,
    title: str,
    items: list[Bar],
    xlabel: str,
    caption: str = "",
    xmax: float | None = 1.0,
    percent: bool = True,
) -> Figure:
    """Horizontal bars with interval whiskers and each value printed beside its bar."""
    import numpy as np

    names = [_short(b.name) for b in items]
    fig = _figure(7.5, 1.1 + 0.3 * len(items), left=_label_margin(names))
    ax = fig.add_subplot()
    y = np.arange(len(items))[::-1].astype(float)
    _hbars(ax, y, items, 0.6)
    for yi, item in zip(y, items):
        text = "no value" if item.value is None else (fmt.pct(item.value) if percent else fmt.num(item.value))
        ax.text(max(item.value or 0.0, item.ci_high or 0.0), yi, f" {text}", va="center", fontsize=FONT - 1)
    ax.set_yticks(y, names, fontsize=FONT)
    top = xmax if xmax is not None else max([b.ci_high or b.value or 0.0 for b in items] + [1e-9])
    ax.set_xlim(0, top * 1.12)
    ax.set_ylim(-0.6, len(items) - 0.4)
    ax.set_xlabel(xlabel, fontsize=FONT)
    ax.tick_params(axis="x", labelsize=FONT)
    _title(fig, title)
    alt = f"{title}. Bars: " + "; ".join(
        f"{b.name} {fmt.pct(b.value) if percent else fmt.num(b.value)} {fmt.interval(b.ci_low, b.ci_high)}".strip()
        for b in items[:30]
    )
    return Figure(id=fig_id, title=title, uri=to_data_url(fig), alt=alt + ".", caption=caption)


def paired_bars(
    fig_id: str,
    title: str,
    labels: list[str],
    series: dict[str, list[Bar]],
    palette: Palette,
    caption: str = "",
    xlabel: str = "share",
) -> Figure:
    """Bars of several series per label (e.g. raw vs corrected shares), values printed."""
    import numpy as np

    names = list(series)
    height = 0.8 / max(len(names), 1)
    fig = _figure(7.5, 1.1 + 0.3 * len(labels) * max(len(names), 1), left=_label_margin(labels))
    ax = fig.add_subplot()
    hatches = ["", "////", "....", "xxxx"]
    base = np.arange(len(labels))[::-1].astype(float)
    for s, name in enumerate(names):
        items = [b.model_copy(update={"colour": palette[lab]}) for b, lab in zip(series[name], labels)]
        y = base + 0.4 - height * (s + 0.5)
        _hbars(ax, y, items, height * 0.95, hatch=hatches[s % len(hatches)], edgecolor="white")
        for yi, item in zip(y, items):
            ax.text(
                max(item.value or 0.0, item.ci_high or 0.0),
                yi,
                f" {name} {fmt.pct(item.value)}",
                va="center",
                fontsize=FONT - 2,
            )
    ax.set_yticks(base, labels, fontsize=FONT)
    ax.set_xlim(0, 1.25)
    ax.set_xlabel(xlabel, fontsize=FONT)
    _title(fig, title)
    alt = f"{title}. " + "; ".join(
        f"{lab}: " + ", ".join(f"{name} {fmt.pct(series[name][i].value)}" for name in names)
        for i, lab in enumerate(labels)
    )
    return Figure(id=fig_id, title=title, uri=to_data_url(fig), alt=alt + ".", caption=caption)


def diverging(fig_id: str, title: str, items: list[Bar], xlabel: str, caption: str = "") -> Figure:
    """Signed differences with intervals around 0 (comparisons), values printed."""
    import numpy as np

    names = [_short(b.name) for b in items]
    fig = _figure(7.5, 1.1 + 0.3 * len(items), left=_label_margin(names))
    ax = fig.add_subplot()
    y = np.arange(len(items))[::-1].astype(float)
    _hbars(ax, y, items, 0.6)
    for yi, item in zip(y, items):
        value = item.value or 0.0
        ax.text(
            value, yi, f" {fmt.num(item.value)} ", va="center", ha="left" if value >= 0 else "right", fontsize=FONT - 1
        )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, names, fontsize=FONT)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-0.6, len(items) - 0.4)
    ax.set_xlabel(xlabel, fontsize=FONT)
    _title(fig, title)
    alt = f"{title}. " + "; ".join(f"{b.name} {fmt.num(b.value)} {fmt.interval(b.ci_low, b.ci_high)}" for b in items)
    return Figure(id=fig_id, title=title, uri=to_data_url(fig), alt=alt + ".", caption=caption)

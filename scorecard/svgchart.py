"""Small vector charts for the audit PDF, drawn as SVG in-process.

Why not plotly through kaleido: kaleido drives a headless Chromium, measured here at 6.5 s to
start and 0.45 s a chart with its server kept running, about 30 s for a year's 50 drills; this
draws one in a few milliseconds, needs no browser where exports are built, and the same data
always gives the same bytes (the command and the page give the same document). Series are told
apart by dash and marker shape, so the charts read in black and white.
"""

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape

DASHES = ("", "6 3", "2 2", "8 3 2 3", "10 4", "4 4")
SHAPES = ("circle", "square", "triangle", "cross", "diamond", "x")
WIDTH, HEIGHT = 520, 190
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 26, 34
MAX_MARKERS = 800


@dataclass
class Line:
    name: str
    x: list[float]
    y: list[float | None]
    markers_only: bool = False


@dataclass
class Chart:
    lines: list[Line]
    y_label: str = ""
    x_time: bool = True  # x in epoch seconds, labelled as dates
    log_y: bool = False
    marks: list[tuple[float, str]] = field(default_factory=list)  # vertical lines with a label
    bands: list[tuple[float, float, str]] = field(default_factory=list)  # shaded spans with a label
    x_range: tuple[float, float] | None = None


def epoch(moment: str | datetime) -> float:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(UTC).timestamp()


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def _time_label(value: float, span: float) -> str:
    moment = datetime.fromtimestamp(value, UTC)
    return moment.strftime("%H:%M" if span <= 2 * 86400 else "%m-%d")


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.2g}"


def _marker(shape: str, x: float, y: float, r: float = 2.2) -> str:
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="none" stroke="#000" stroke-width="0.7"/>'
    if shape == "square":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}" fill="#000"/>'
    if shape == "triangle":
        return f'<path d="M{x:.1f} {y - r:.1f}L{x + r:.1f} {y + r:.1f}L{x - r:.1f} {y + r:.1f}Z" fill="#000"/>'
    if shape == "diamond":
        return (f'<path d="M{x:.1f} {y - r:.1f}L{x + r:.1f} {y:.1f}L{x:.1f} {y + r:.1f}L{x - r:.1f} {y:.1f}Z" '
                f'fill="none" stroke="#000" stroke-width="0.7"/>')  # fmt: skip
    if shape == "cross":
        return (f'<path d="M{x - r:.1f} {y:.1f}H{x + r:.1f}M{x:.1f} {y - r:.1f}V{y + r:.1f}" '
                f'stroke="#000" stroke-width="0.8"/>')  # fmt: skip
    cross = f"M{x - r:.1f} {y - r:.1f}L{x + r:.1f} {y + r:.1f}M{x - r:.1f} {y + r:.1f}L{x + r:.1f} {y - r:.1f}"
    return f'<path d="{cross}" stroke="#000" stroke-width="0.8"/>'


def _scatter(index: int, pairs: list[tuple[float, float]]) -> str:
    """Many points as one path (a renderer lays out one element, not thousands): round dots for
    the first series, small crosses for the next, so they differ without colour."""
    if index % 2 == 0:
        dots = "".join(f"M{x:.1f} {y:.1f}h0.01" for x, y in pairs)
        return f'<path d="{dots}" stroke="#000" stroke-width="1.6" stroke-linecap="round"/>'
    crosses = "".join(f"M{x - 1.3:.1f} {y:.1f}h2.6M{x:.1f} {y - 1.3:.1f}v2.6" for x, y in pairs)
    return f'<path d="{crosses}" stroke="#555" stroke-width="0.45"/>'


def render(chart: Chart) -> str:
    """The chart as an SVG element (empty string when there is nothing to draw)."""
    points = [(x, y) for line in chart.lines for x, y in zip(line.x, line.y, strict=False) if y is not None]
    if not points:
        return ""
    xs = [x for x, _ in points]
    x0, x1 = chart.x_range or (min(xs), max(xs))
    if x1 <= x0:
        x0, x1 = x0 - 1, x1 + 1
    ys = [y for _, y in points if not chart.log_y or y > 0]
    if not ys:  # a log scale with nothing above zero: nothing to draw
        return ""
    if chart.log_y:
        low, high = math.log10(max(min(ys), 1e-3)), math.log10(max(ys))
        low, high = math.floor(low), math.ceil(high) if high > low else math.floor(low) + 1
        scale = lambda y: (math.log10(y) - low) / (high - low)  # noqa: E731
        y_ticks = [10**e for e in range(int(low), int(high) + 1)]
    else:
        high = max(ys) * 1.1 if max(ys) > 0 else 1
        scale = lambda y: y / high  # noqa: E731
        y_ticks = _ticks(0, high)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return TOP + plot_h - max(0.0, min(1.0, scale(y))) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans" font-size="8">']  # fmt: skip
    for start, end, label in chart.bands:
        a, b = px(max(start, x0)), px(min(end, x1))
        out.append(f'<rect x="{a:.1f}" y="{TOP}" width="{max(b - a, 1):.1f}" height="{plot_h}" fill="#ddd"/>')
        out.append(f'<text x="{a + 2:.1f}" y="{TOP + 9}" fill="#333">{escape(label)}</text>')
    for tick in y_ticks:
        y = py(tick)
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ccc" stroke-width="0.4"/>'
        )
        out.append(f'<text x="{LEFT - 3}" y="{y + 3:.1f}" text-anchor="end">{_number(tick)}</text>')
    span = x1 - x0
    for tick in _ticks(x0, x1):
        x = px(tick)
        label = _time_label(tick, span) if chart.x_time else _number(tick)
        out.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 11}" text-anchor="middle">{label}</text>')
    out.append(f'<path d="M{LEFT} {TOP}V{TOP + plot_h}H{WIDTH - RIGHT}" fill="none" stroke="#000" stroke-width="0.7"/>')
    if chart.y_label:
        out.append(f'<text x="10" y="{TOP + plot_h / 2:.0f}" transform="rotate(-90 10 {TOP + plot_h / 2:.0f})" '
                   f'text-anchor="middle">{escape(chart.y_label)}</text>')  # fmt: skip
    for x, label in chart.marks:
        if x0 <= x <= x1:
            out.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{TOP}" y2="{TOP + plot_h}" stroke="#000" '
                       f'stroke-width="0.8" stroke-dasharray="3 2"/>')  # fmt: skip
            out.append(f'<text x="{px(x) + 2:.1f}" y="{TOP + plot_h - 3}">{escape(label)}</text>')
    legend_x = LEFT
    for index, line in enumerate(chart.lines):
        dash, shape = DASHES[index % len(DASHES)], SHAPES[index % len(SHAPES)]
        pairs = [
            (px(x), py(y)) for x, y in zip(line.x, line.y, strict=False) if y is not None and (y > 0 or not chart.log_y)
        ]
        if len(pairs) > MAX_MARKERS:
            pairs = pairs[:: math.ceil(len(pairs) / MAX_MARKERS)]
        if not line.markers_only:
            # A None in the data is a gap: the line is drawn in runs between gaps.
            runs, run = [], []
            for x, y in zip(line.x, line.y, strict=False):
                if y is None:
                    runs, run = runs + [run] if run else runs, []
                else:
                    run.append(f"{px(x):.1f} {py(y):.1f}")
            runs += [run] if run else []
            for run in runs:
                out.append(f'<path d="M{"L".join(run)}" fill="none" stroke="#000" stroke-width="1" '
                           f'stroke-dasharray="{dash}"/>')  # fmt: skip
        if line.markers_only:
            out.append(_scatter(index, pairs))
        elif len(pairs) <= 60:
            out.extend(_marker(shape, x, y) for x, y in pairs)
        sample = _scatter(index, [(legend_x + 4, 12)]) if line.markers_only else _marker(shape, legend_x + 4, 12)
        out.append(sample + f'<text x="{legend_x + 10}" y="15">{escape(line.name)}</text>')
        legend_x += 16 + 5.2 * len(line.name)
    out.append("</svg>")
    return "".join(out)

"""The availability timeline of a drill as a plotly figure (JSON for the page and the PDF).

Two rows sharing the time axis: latencies of every acknowledged and consumed record (log
scale), and below them a track of the records that were never acknowledged, drawn where a
person sees them. The fault and the recovery are shaded from the moment their commands
started to the moment the actuator confirmed them, and the fault window runs on to the start
of the recovery.
"""

import plotly.graph_objects as go
from plotly.subplots import make_subplots

MAX_POINTS = 20_000
FAULT, RECOVERY, TRIP = "#c0392b", "#1a9c5b", "#8a5300"


def _thin(rows: list, limit: int = MAX_POINTS) -> list:
    """Keep every failed or unacknowledged record and a regular sample of the rest."""
    if len(rows) <= limit:
        return rows
    step = len(rows) / limit
    keep = {int(i * step) for i in range(limit)}
    return [r for i, r in enumerate(rows) if i in keep or r[5] or r[3] is None]


def _seconds(timeline: dict, key: str) -> float | None:
    value = timeline.get(key)
    return None if value is None else value / 1000


def timeline_figure(timeline: dict, *, title: str = "") -> go.Figure:
    rows = _thin(timeline.get("records", []))
    acked = [r for r in rows if r[3] is not None and not r[5]]
    consumed = [r for r in rows if r[4] is not None]
    failed = [r for r in rows if r[5]]
    unreported = [r for r in rows if r[3] is None and not r[5]]
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.82, 0.18], vertical_spacing=0.04)
    for records, column, name, marker in (
        # Told apart by shape too (dots and open diamonds), so the chart reads in black and white.
        (acked, 3, "produce latency (ack)", {"size": 3, "color": "#2b5fd9", "symbol": "circle"}),
        (consumed, 4, "end-to-end latency", {"size": 5, "color": "#1a9c5b", "symbol": "diamond-open", "opacity": 0.7}),
    ):
        figure.add_trace(
            go.Scattergl(
                x=[r[2] / 1000 for r in records],
                y=[r[column] - r[2] for r in records],
                mode="markers",
                name=name,
                marker=marker,
            ),
            row=1,
            col=1,
        )
    for records, name, y, symbol in (
        (failed, f"failed ({len(failed)})", 1, "x"),
        (unreported, f"never reported ({len(unreported)})", 0, "circle-open"),
    ):
        figure.add_trace(
            go.Scattergl(
                x=[r[2] / 1000 for r in records],
                y=[y] * len(records),
                mode="markers",
                name=name,
                marker={"size": 7, "color": FAULT, "symbol": symbol},
            ),
            row=2,
            col=1,
        )
    fault_start, fault_end = _seconds(timeline, "fault_started_ms"), _seconds(timeline, "fault_ms")
    recovery_start, recovery_end = _seconds(timeline, "recovery_started_ms"), _seconds(timeline, "recovery_ms")
    if fault_start is not None:
        # The fault holds from its first command to the start of the recovery.
        end = recovery_start or fault_end or fault_start
        figure.add_vrect(x0=fault_start, x1=end, fillcolor=FAULT, opacity=0.08, line_width=0, annotation_text="fault")
    if recovery_start is not None:
        figure.add_vrect(
            x0=recovery_start, x1=recovery_end or recovery_start, fillcolor=RECOVERY, opacity=0.2,
            annotation_text="recovery", annotation_position="top right",
        )  # fmt: skip
    # Each mark has its own dash pattern and its label: no colour needed to tell them apart.
    marks = [
        (fault_end, "fault confirmed", FAULT, "dash"),
        (recovery_end, "recovery confirmed", RECOVERY, "dot"),
        (_seconds(timeline, "tripped_ms"), "guardrail tripped", TRIP, "dashdot"),
    ]
    for x, label, color, dash in marks:
        if x is not None:
            figure.add_vline(x=x, line={"color": color, "dash": dash, "width": 2}, annotation_text=label)
    figure.update_layout(
        title=title,
        height=480,
        margin={"l": 60, "r": 20, "t": 40, "b": 50},
        legend={"orientation": "h", "y": -0.15},
        template="plotly_white",
    )
    figure.update_yaxes(type="log", title_text="latency, ms", row=1, col=1)
    figure.update_yaxes(range=[-0.5, 1.5], tickvals=[0, 1], ticktext=["never reported", "failed"], row=2, col=1)
    figure.update_xaxes(title_text="seconds since the drill started (record send time)", row=2, col=1)
    return figure

"""The availability timeline of a drill as a plotly figure (JSON for the page and the PDF)."""

import plotly.graph_objects as go

MAX_POINTS = 20_000


def _thin(rows: list, limit: int = MAX_POINTS) -> list:
    """Keep every failed record and a regular sample of the rest."""
    if len(rows) <= limit:
        return rows
    step = len(rows) / limit
    keep = {int(i * step) for i in range(limit)}
    return [r for i, r in enumerate(rows) if i in keep or r[5]]


def timeline_figure(timeline: dict, *, title: str = "") -> go.Figure:
    rows = _thin(timeline.get("records", []))
    acked = [r for r in rows if r[3] is not None and not r[5]]
    consumed = [r for r in rows if r[4] is not None]
    failed = [r for r in rows if r[5]]
    figure = go.Figure()
    figure.add_trace(
        go.Scattergl(
            x=[r[2] / 1000 for r in acked],
            y=[r[3] - r[2] for r in acked],
            mode="markers",
            name="produce latency (ack)",
            marker={"size": 3, "color": "#2b5fd9"},
        )
    )
    figure.add_trace(
        go.Scattergl(
            x=[r[2] / 1000 for r in consumed],
            y=[r[4] - r[2] for r in consumed],
            mode="markers",
            name="end-to-end latency",
            marker={"size": 3, "color": "#1a9c5b", "opacity": 0.6},
        )
    )
    if failed:
        figure.add_trace(
            go.Scattergl(
                x=[r[2] / 1000 for r in failed],
                y=[0] * len(failed),
                mode="markers",
                name="failed (never acknowledged)",
                marker={"size": 6, "color": "#c0392b", "symbol": "x"},
            )
        )
    for key, label, color in (
        ("fault_ms", "fault", "#c0392b"),
        ("recovery_ms", "recovery", "#1a9c5b"),
        ("tripped_ms", "guardrail tripped", "#8a5300"),
    ):
        if timeline.get(key) is not None:
            x = timeline[key] / 1000
            figure.add_vline(x=x, line={"color": color, "dash": "dash"}, annotation_text=label)
    figure.update_layout(
        title=title,
        height=420,
        margin={"l": 60, "r": 20, "t": 40, "b": 50},
        legend={"orientation": "h", "y": -0.2},
        xaxis_title="seconds since the drill started (record send time)",
        yaxis_title="latency, ms",
        template="plotly_white",
    )
    figure.update_yaxes(type="log")
    return figure

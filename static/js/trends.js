// Draws the trend charts the page embeds as JSON: one Plotly line chart per measurement,
// each series with its own dash and marker so the charts read in black and white.
(function () {
  const data = document.getElementById("trend-data");
  if (!data) return;
  const dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"];
  const symbols = ["circle", "square", "diamond", "triangle-up", "x", "cross"];
  const {period, charts} = JSON.parse(data.textContent);
  for (const chart of charts) {
    const target = document.getElementById(`chart-${chart.key}`);
    if (!target) continue;
    const traces = chart.series.map((s, i) => ({
      name: s.name, x: s.x, y: s.y, type: "scatter", mode: "lines+markers", connectgaps: false,
      line: {dash: dashes[i % dashes.length], width: 2}, marker: {symbol: symbols[i % symbols.length], size: 6},
    }));
    const layout = {
      height: 260, margin: {l: 56, r: 16, t: 8, b: 40}, showlegend: chart.series.length > 1,
      legend: {orientation: "h", y: -0.25}, yaxis: {title: {text: chart.unit}, rangemode: "tozero"},
      xaxis: {type: "date", range: period}, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#fff",
    };
    Plotly.newPlot(target, traces, layout, {responsive: true, displaylogo: false});
  }
})();

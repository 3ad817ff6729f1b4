// Draws the drill's availability timeline from the figure the page embeds as JSON.
(function () {
  const data = document.getElementById("timeline-data");
  if (!data) return;
  const fig = JSON.parse(JSON.parse(data.textContent));
  Plotly.newPlot("timeline", fig.data, fig.layout, {responsive: true, displaylogo: false});
})();

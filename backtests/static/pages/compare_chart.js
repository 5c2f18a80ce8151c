// The comparison's chart: each run's equity divided by its first value, on one chart.
(() => {
  "use strict";
  const el = document.getElementById("compare-chart");
  const LC = window.LightweightCharts;
  const colors = ["#2962ff", "#e65100", "#2e7d32", "#8e24aa", "#c62828"];
  const chart = LC.createChart(el, {
    autoSize: true,
    layout: { attributionLogo: false, background: { color: "transparent" } },
    timeScale: { timeVisible: true, secondsVisible: false },
  });
  const legend = document.getElementById("compare-legend");
  const ids = el.dataset.ids.split(",");
  Promise.all(ids.map((id) => fetch(`/backtests/${id}/equity?max=3000`, { credentials: "same-origin" }).then((r) => r.json())))
    .then((curves) => {
      curves.forEach((curve, n) => {
        const series = chart.addSeries(LC.LineSeries, { color: colors[n], lineWidth: 2, title: `run ${n + 1}` });
        const first = curve.equity[0] || 1;
        series.setData(curve.ts.map((ts, i) => ({ time: Date.parse(ts) / 1000, value: curve.equity[i] / first })));
        const item = document.createElement("span");
        item.textContent = `run ${n + 1}: ${ids[n]}`;
        item.dataset.color = colors[n];
        legend.append(item);
      });
      chart.timeScale().fitContent();
      el.dataset.drawn = String(curves.length);
    });
})();

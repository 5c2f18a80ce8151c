// The run page's charts: equity with the buy-and-hold benchmark, and the drawdown below,
// from the API's GET /backtests/<id>/equity (the same figures a client of the API gets).
(() => {
  "use strict";
  const header = document.getElementById("run-header");
  const LC = window.LightweightCharts;
  const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
  const layout = {
    attributionLogo: false, // the page's footer gives the attribution instead (CSP)
    background: { color: "transparent" },
    textColor: dark ? "#e3e6ec" : "#1d2433",
  };
  const grid = { vertLines: { color: dark ? "#2a2f38" : "#eef0f4" }, horzLines: { color: dark ? "#2a2f38" : "#eef0f4" } };
  const options = { autoSize: true, layout, grid, timeScale: { timeVisible: true, secondsVisible: false } };
  const seconds = (iso) => Date.parse(iso) / 1000;

  async function draw() {
    const response = await fetch(`/backtests/${header.dataset.run}/equity?max=3000`, { credentials: "same-origin" });
    if (!response.ok) return;
    const curve = await response.json();
    const times = curve.ts.map(seconds);
    const equityChart = LC.createChart(document.getElementById("equity-chart"), options);
    const strategy = equityChart.addSeries(LC.LineSeries, { color: "#2962ff", lineWidth: 2, title: "strategy" });
    const benchmark = equityChart.addSeries(LC.LineSeries, { color: "#9e9e9e", lineWidth: 1, title: "buy and hold" });
    strategy.setData(times.map((time, i) => ({ time, value: curve.equity[i] })));
    benchmark.setData(times.map((time, i) => ({ time, value: curve.benchmark[i] })));
    const drawdownChart = LC.createChart(document.getElementById("drawdown-chart"), options);
    const drawdown = drawdownChart.addSeries(LC.AreaSeries, {
      lineColor: "#b3261e", topColor: "rgba(179,38,30,0.05)", bottomColor: "rgba(179,38,30,0.4)",
      invertFilledArea: true, priceFormat: { type: "percent" }, title: "drawdown %",
    });
    drawdown.setData(times.map((time, i) => ({ time, value: curve.drawdown[i] * 100 })));
    equityChart.timeScale().fitContent();
    drawdownChart.timeScale().fitContent();
    // One time axis for both: scrolling one scrolls the other.
    equityChart.timeScale().subscribeVisibleLogicalRangeChange((range) => range && drawdownChart.timeScale().setVisibleLogicalRange(range));
    document.getElementById("equity-chart").dataset.drawn = String(times.length);
  }
  draw();
})();

// Follows a QUEUED or RUNNING sweep on its page: the sweep's progress events
// (GET /sweeps/<id>/events) move the progress bar, the count and the best so far; the
// page reloads once the sweep has finished, so that its heatmap and results appear.
(() => {
  "use strict";
  const header = document.getElementById("sweep-header");
  if (!header || !["QUEUED", "RUNNING"].includes(header.dataset.status)) return;
  const field = (name) => header.querySelector(`[data-field="${name}"]`);
  const text = (params) =>
    Object.entries(params || {}).map(([k, v]) => `${k}=${v}`).join(" ") || "\u2013";
  const events = new EventSource(`/sweeps/${header.dataset.sweep}/events`);
  events.addEventListener("progress", (event) => {
    const sweep = JSON.parse(event.data);
    const bar = document.getElementById("progress");
    bar.max = sweep.total;
    bar.value = sweep.done;
    field("done").textContent = sweep.done;
    field("total").textContent = sweep.total;
    field("status").textContent = sweep.status;
    field("status").className = `badge ${sweep.status.toLowerCase()}`;
    header.dataset.status = sweep.status;
    if (sweep.best) {
      field("best").textContent = text(sweep.best.params);
      const maximize = document.querySelector("#best").dataset.maximize;
      const value = sweep.best.metrics && sweep.best.metrics[maximize];
      if (value !== undefined) field("best-figure").textContent = value === null ? "\u2013" : value.toFixed(3);
    }
  });
  events.addEventListener("end", () => {
    events.close();
    window.location.reload();
  });
})();

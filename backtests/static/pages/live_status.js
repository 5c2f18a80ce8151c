// Follows QUEUED and RUNNING runs on the page (elements with data-run and data-status):
// asks the API for each one's status every two seconds, updates its badge, and reloads
// the page once one has finished, so that its figures appear.
(() => {
  "use strict";
  const WAITING = new Set(["QUEUED", "RUNNING"]);
  const waiting = () =>
    [...document.querySelectorAll("[data-run][data-status]")].filter((el) =>
      WAITING.has(el.dataset.status));

  async function poll() {
    const elements = waiting();
    if (!elements.length) return;
    let finished = false;
    for (const el of elements) {
      try {
        const response = await fetch(`/backtests/${el.dataset.run}`, {
          headers: { Accept: "application/json" }, credentials: "same-origin",
        });
        if (!response.ok) continue;
        const run = await response.json();
        if (run.status === el.dataset.status) continue;
        el.dataset.status = run.status;
        const badge = el.querySelector("[data-field=status]");
        if (badge) {
          badge.textContent = run.status;
          badge.className = `badge ${run.status.toLowerCase()}`;
        }
        if (!WAITING.has(run.status)) finished = true;
      } catch (error) {
        // the server restarts, or the network blips: the next poll tries again
      }
    }
    if (finished) {
      window.location.reload();
      return;
    }
    setTimeout(poll, 2000);
  }
  setTimeout(poll, 2000);
})();

// The viewer: plays a run over the WebSocket, or over Server-Sent Events when the socket
// cannot connect; reconnects with backoff and resumes from the last bar it drew.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const root = $("viewer");
  const runId = root.dataset.runId;
  const bars = Number(root.dataset.bars);
  const LC = window.LightweightCharts;

  // The library's logo comes with an inline <style>, which the page's CSP refuses: the
  // attribution its licence asks for is the page's footer link instead.
  const priceChart = LC.createChart($("price-chart"), {
    autoSize: true,
    layout: { attributionLogo: false },
    timeScale: { timeVisible: true, secondsVisible: false },
  });
  const candles = priceChart.addSeries(LC.CandlestickSeries);
  const markers = LC.createSeriesMarkers(candles, []);
  const equityChart = LC.createChart($("equity-chart"), {
    autoSize: true,
    layout: { attributionLogo: false },
    timeScale: { timeVisible: true, secondsVisible: false },
  });
  const equityLine = equityChart.addSeries(LC.LineSeries, { lineWidth: 2, color: "#2962ff" });

  const state = {
    playing: false,
    speed: Number($("speed").value),
    lastBar: -1, // the last bar drawn: a reconnect resumes after it
    lastTime: 0,
    markers: [],
    frames: 0,
    retry: 0,
  };
  let transport = null;

  const percent = (x) => (x === null ? "-" : `${(100 * x).toFixed(2)}%`);

  function resetCharts() {
    candles.setData([]);
    equityLine.setData([]);
    state.markers = [];
    markers.setMarkers([]);
    state.lastTime = 0;
  }

  function onFrame(f) {
    const time = Date.parse(f.ts) / 1000;
    // A seek (the frame does not follow the last one): start the charts afresh.
    if (f.i - f.n + 1 !== state.lastBar + 1 || time <= state.lastTime) resetCharts();
    candles.update({ time, open: f.ohlc.o, high: f.ohlc.h, low: f.ohlc.l, close: f.ohlc.c });
    equityLine.update({ time, value: f.equity });
    for (const order of f.orders) {
      const buy = order.side === "buy";
      state.markers.push({
        time,
        position: buy ? "belowBar" : "aboveBar",
        color: buy ? "#26a69a" : "#ef5350",
        shape: buy ? "arrowUp" : "arrowDown",
      });
    }
    if (f.orders.length) markers.setMarkers(state.markers.slice(-300));
    state.lastTime = time;
    state.lastBar = f.i;
    state.frames += 1;
    $("ts").textContent = f.ts;
    $("equity").textContent = f.equity.toFixed(2);
    $("total-return").textContent = percent(f.metrics.total_return);
    $("max-drawdown").textContent = percent(f.metrics.max_drawdown);
    $("dropped").textContent = String(f.dropped);
    $("position").textContent = `bar ${f.i} of ${bars}`;
    if (document.activeElement !== $("scrubber")) $("scrubber").value = String(f.i);
    root.dataset.frames = String(state.frames);
  }

  function onEnd() {
    state.playing = false;
    $("status").textContent = "The end: play starts again from the first bar.";
  }

  function onStatus(status) {
    $("status").textContent = `The run is ${status}.`;
    if (status === "DONE" && bars === 0) window.location.reload(); // now it can play
  }

  // --- WebSocket -------------------------------------------------------------------
  function connectSocket() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${window.location.host}/backtests/${runId}/ws`);
    let opened = false;
    const send = (cmd, extra) => ws.send(JSON.stringify({ t: "ctrl", cmd, ...extra }));
    ws.onopen = () => {
      opened = true;
      state.retry = 0;
      transport = {
        kind: "WebSocket",
        play: () => send("play"),
        pause: () => send("pause"),
        speed: () => send("speed", { val: state.speed }),
        seek: (pos) => send("seek", { pos }),
      };
      $("transport").textContent = transport.kind;
      transport.speed();
      if (state.lastBar >= 0 && state.lastBar < bars - 1) transport.seek(state.lastBar + 1);
      if (state.playing) transport.play();
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.t === "frame") onFrame(message);
      else if (message.t === "end") onEnd();
      else if (message.t === "status") onStatus(message.status);
      else if (message.t === "err") $("status").textContent = `${message.code}: ${message.msg}`;
    };
    ws.onclose = () => {
      if (!opened) {
        connectStream(); // the socket cannot connect here: the SSE fallback
        return;
      }
      transport = null;
      $("transport").textContent = "reconnecting";
      const delay = Math.min(30000, 500 * 2 ** state.retry);
      state.retry += 1;
      window.setTimeout(connectSocket, delay);
    };
  }

  // --- Server-Sent Events ------------------------------------------------------------
  function connectStream() {
    let source = null;
    const open = (from, once) => {
      if (source) source.close();
      const url = `/backtests/${runId}/stream?speed=${state.speed}&from=${from}`;
      source = new EventSource(url); // it reconnects by itself, with Last-Event-ID
      source.addEventListener("frame", (event) => {
        onFrame(JSON.parse(event.data));
        if (once) close();
      });
      source.addEventListener("end", () => {
        close();
        onEnd();
      });
    };
    const close = () => {
      if (source) source.close();
      source = null;
    };
    const from = () => (state.lastBar + 1 < bars ? state.lastBar + 1 : 0);
    transport = {
      kind: "Server-Sent Events",
      play: () => open(from(), false),
      pause: close,
      speed: () => {
        if (state.playing) open(from(), false);
      },
      seek: (pos) => {
        state.lastBar = pos - 1;
        open(pos, !state.playing); // paused: one frame for the new position
      },
    };
    $("transport").textContent = transport.kind;
    if (state.playing) transport.play();
  }

  // --- Controls ------------------------------------------------------------------
  $("play").addEventListener("click", () => {
    state.playing = true;
    if (transport) transport.play();
  });
  $("pause").addEventListener("click", () => {
    state.playing = false;
    if (transport) transport.pause();
  });
  $("speed").addEventListener("change", () => {
    state.speed = Number($("speed").value);
    if (transport) transport.speed();
  });
  $("scrubber").addEventListener("change", () => {
    if (transport) transport.seek(Number($("scrubber").value));
  });

  window.viewer = { state, transport: () => transport }; // for tests and the console
  connectSocket();
})();

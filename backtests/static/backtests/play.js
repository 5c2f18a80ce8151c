// The viewer: plays a run over the WebSocket, or over Server-Sent Events when the socket
// cannot connect; reconnects with backoff and resumes from the last bar it drew. A seek
// draws the history before the new position from GET /backtests/<id>/bars, so that the
// chart keeps what came before; every order is kept as a marker, with a tooltip.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const root = $("viewer");
  const runId = root.dataset.runId;
  const bars = Number(root.dataset.bars);
  const playable = root.dataset.playable === "true";
  const precision = Number(root.dataset.precision || 2);
  const LC = window.LightweightCharts;
  const HISTORY_CANDLES = 2000; // drawn before a seek's position
  const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;

  // --- Time zones: UTC or the dataset's, for the axis, the crosshair and the figures ---
  let zone = "UTC";
  const formatters = {};
  const formatter = (options) => {
    const key = `${zone}|${JSON.stringify(options)}`;
    if (!formatters[key]) formatters[key] = new Intl.DateTimeFormat("en-GB", { timeZone: zone, ...options });
    return formatters[key];
  };
  const timeText = (seconds) =>
    formatter({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
      .format(new Date(seconds * 1000));
  const tickText = (seconds, kind) => {
    const date = new Date(seconds * 1000);
    if (kind <= 1) return formatter({ year: "numeric", month: "short" }).format(date); // year, month
    if (kind === 2) return formatter({ month: "short", day: "numeric" }).format(date); // day
    return formatter({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(date);
  };

  const chartOptions = () => ({
    autoSize: true,
    layout: {
      attributionLogo: false, // its inline <style> breaks the CSP: the footer attributes instead
      background: { color: "transparent" },
      textColor: dark ? "#e3e6ec" : "#1d2433",
    },
    grid: { vertLines: { color: dark ? "#2a2f38" : "#eef0f4" }, horzLines: { color: dark ? "#2a2f38" : "#eef0f4" } },
    localization: { timeFormatter: timeText },
    timeScale: { timeVisible: true, secondsVisible: false, tickMarkFormatter: tickText },
  });
  const priceFormat = { type: "price", precision, minMove: 10 ** -precision };
  const priceChart = LC.createChart($("price-chart"), chartOptions());
  const candles = priceChart.addSeries(LC.CandlestickSeries, { priceFormat });
  const markers = LC.createSeriesMarkers(candles, []);
  const positionChart = LC.createChart($("position-chart"), chartOptions());
  const positionBars = positionChart.addSeries(LC.HistogramSeries, { priceFormat: { type: "volume" } });
  const equityChart = LC.createChart($("equity-chart"), chartOptions());
  const equityLine = equityChart.addSeries(LC.LineSeries, { lineWidth: 2, color: "#2962ff", title: "equity" });
  // One time axis: scrolling the price chart scrolls the others.
  priceChart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
    if (!range) return;
    positionChart.timeScale().setVisibleLogicalRange(range);
    equityChart.timeScale().setVisibleLogicalRange(range);
  });

  const state = {
    playing: false,
    speed: Number($("speed").value), // the run's own speed is the selected preset
    lastBar: -1, // the last bar drawn: a reconnect resumes after it
    lastTime: 0,
    held: 0,
    markers: [],
    ordersAt: new Map(), // candle time -> the orders drawn at it (tooltips)
    markersDirty: false,
    frames: 0,
    retry: 0,
    loading: null, // the history being fetched for a seek
    queue: [], // frames that arrived while it was
    expect: null, // the first bar of the frame a seek waits for
  };
  let transport = null;

  const percent = (x) => (x === null || x === undefined ? "-" : `${(100 * x).toFixed(2)}%`);
  const positionPoint = (time, held) => ({
    time, value: held, color: held > 0 ? "#26a69a" : held < 0 ? "#ef5350" : "#9e9e9e",
  });

  function addOrder(time, order) {
    const buy = order.side === "buy";
    state.markers.push({
      time,
      position: buy ? "belowBar" : "aboveBar",
      color: buy ? "#26a69a" : "#ef5350",
      shape: buy ? "arrowUp" : "arrowDown",
    });
    if (!state.ordersAt.has(time)) state.ordersAt.set(time, []);
    state.ordersAt.get(time).push(order);
    state.held += buy ? order.qty : -order.qty;
    state.markersDirty = true;
  }

  // Markers are redrawn at most once per animation frame, however many orders arrive.
  function drawMarkers() {
    if (state.markersDirty) {
      markers.setMarkers(state.markers);
      state.markersDirty = false;
    }
    window.requestAnimationFrame(drawMarkers);
  }
  window.requestAnimationFrame(drawMarkers);

  function resetCharts() {
    candles.setData([]);
    equityLine.setData([]);
    positionBars.setData([]);
    state.markers = [];
    state.ordersAt = new Map();
    state.markersDirty = true;
    state.lastTime = 0;
    state.held = 0;
  }

  // The bars before `position`, as candles, orders, equity and position: the chart after
  // a seek shows the history up to it.
  async function drawHistory(position) {
    resetCharts();
    state.lastBar = position - 1;
    if (position <= 0) return;
    const from = Math.max(0, position - 200000);
    const url = `/backtests/${runId}/bars?from=${from}&to=${position}&max=${HISTORY_CANDLES}`;
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) return;
    const window_ = await response.json();
    const times = window_.ts.map((ts) => Date.parse(ts) / 1000);
    candles.setData(times.map((time, k) => ({
      time, open: window_.open[k], high: window_.high[k], low: window_.low[k], close: window_.close[k],
    })));
    equityLine.setData(times.map((time, k) => ({ time, value: window_.equity[k] })));
    positionBars.setData(times.map((time, k) => positionPoint(time, window_.position[k])));
    // Each order at the time of the candle that holds its bar.
    let k = 0;
    for (const order of window_.orders) {
      while (k < window_.i.length - 1 && window_.i[k] < order.i) k += 1;
      addOrder(times[k], order);
    }
    state.held = window_.position[window_.position.length - 1] || 0;
    state.lastTime = times[times.length - 1] || 0;
  }

  // Draw the history before `position`; frames that arrive meanwhile wait their turn.
  function load(position) {
    state.loading = drawHistory(position).finally(() => {
      state.loading = null;
      const waiting = state.queue;
      state.queue = [];
      waiting.forEach(onFrame);
    });
  }

  function onFrame(f) {
    const first = f.i - f.n + 1;
    if (state.expect !== null) {
      if (first !== state.expect) return; // sent before the server took our seek
      state.expect = null;
    }
    if (state.loading) {
      state.queue.push(f);
      return;
    }
    const time = Date.parse(f.ts) / 1000;
    if (first !== state.lastBar + 1 || time <= state.lastTime) {
      // Not the next bars (a reconnect elsewhere, say): the history up to it first.
      state.queue.push(f);
      load(first);
      return;
    }
    candles.update({ time, open: f.ohlc.o, high: f.ohlc.h, low: f.ohlc.l, close: f.ohlc.c });
    equityLine.update({ time, value: f.equity });
    for (const order of f.orders) addOrder(time, order);
    positionBars.update(positionPoint(time, state.held));
    state.lastTime = time;
    state.lastBar = f.i;
    state.frames += 1;
    $("ts").textContent = timeText(time);
    $("equity").textContent = f.equity.toFixed(2);
    $("total-return").textContent = percent(f.metrics.total_return);
    $("max-drawdown").textContent = percent(f.metrics.max_drawdown);
    $("held").textContent = state.held.toFixed(4).replace(/\.?0+$/, "");
    $("dropped").textContent = String(f.dropped);
    $("position").textContent = `bar ${f.i} of ${bars}`;
    if (document.activeElement !== $("scrubber")) $("scrubber").value = String(f.i);
    root.dataset.frames = String(state.frames);
    root.dataset.markers = String(state.markers.length);
  }

  function onEnd() {
    state.playing = false;
    $("status").textContent = "The end: play starts again from the first bar.";
  }

  function onStatus(status) {
    $("status").textContent = `The run is ${status}.`;
    const shown = $("run-status");
    if (shown) shown.textContent = status;
    if (status === "DONE" && bars === 0) window.location.reload(); // now it can play
    if (status === "ERROR" || status === "CANCELLED") window.location.reload(); // says why
  }

  // --- Tooltips: the orders at the crosshair's candle --------------------------------
  const tooltip = $("tooltip");
  priceChart.subscribeCrosshairMove((param) => {
    const orders = param.time !== undefined ? state.ordersAt.get(param.time) : undefined;
    if (!orders || !param.point) {
      tooltip.hidden = true;
      return;
    }
    tooltip.textContent = orders.map((o) =>
      `${o.side} ${o.qty.toFixed(4)} at ${o.price.toFixed(precision)}, fee ${o.fee.toFixed(2)}`).join("\n");
    const box = $("price-chart").getBoundingClientRect();
    tooltip.style.left = `${box.left + param.point.x + 12}px`;
    tooltip.style.top = `${box.top + param.point.y + 12}px`;
    tooltip.hidden = false;
  });

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
      seek: (pos) => open(pos, !state.playing), // paused: one frame for the new position
    };
    $("transport").textContent = transport.kind;
    if (state.playing) transport.play();
  }

  // --- Controls ------------------------------------------------------------------
  const play = () => {
    state.playing = true;
    if (transport) transport.play();
  };
  const pause = () => {
    state.playing = false;
    if (transport) transport.pause();
  };
  const seek = (pos) => {
    const target = Math.max(0, Math.min(bars - 1, pos));
    $("scrubber").value = String(target);
    state.expect = target;
    state.queue = [];
    load(target);
    if (transport) transport.seek(target);
  };
  $("play").addEventListener("click", play);
  $("pause").addEventListener("click", pause);
  $("speed").addEventListener("change", () => {
    state.speed = Number($("speed").value);
    if (transport) transport.speed();
  });
  $("scrubber").addEventListener("change", () => seek(Number($("scrubber").value)));
  $("tz").addEventListener("change", () => {
    zone = $("tz").value;
    $("tz-label").textContent = zone;
    for (const chart of [priceChart, positionChart, equityChart]) chart.applyOptions(chartOptions());
    if (state.lastTime) $("ts").textContent = timeText(state.lastTime);
  });
  document.addEventListener("keydown", (event) => {
    if (!playable || ["INPUT", "SELECT", "TEXTAREA"].includes(event.target.tagName)) return;
    if (event.key === " ") {
      event.preventDefault();
      if (state.playing) pause();
      else play();
    } else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      event.preventDefault();
      const step = (event.shiftKey ? 100 : 1) * (event.key === "ArrowRight" ? 1 : -1);
      if (state.playing) pause();
      seek(state.lastBar + step);
    }
  });

  // For tests and the console: the state, and how many candles the price chart holds.
  window.viewer = {
    state,
    transport: () => transport,
    candles: () => candles.data().length,
    positions: () => positionBars.data().length,
    x: (time) => priceChart.timeScale().timeToCoordinate(time), // a candle's place (tests)
  };
  const waiting = ["QUEUED", "RUNNING"].includes($("status").dataset.status);
  if (playable || waiting) connectSocket(); // a waiting run hears its status on it
})();

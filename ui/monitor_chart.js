// ERT monitor chart (Streamlit custom component v2, no iframe).
//
// The browser keeps the samples it has and appends the new ones Python sends
// (data.seq is the newest sequence number, data.columns the samples after the
// one the browser said it had). While the page is visible it asks for more
// every data.interval seconds (a "tick" trigger carrying the last sequence
// number it holds); when the tab is hidden it stops asking, so nothing runs on
// the server for a page nobody watches. uPlot (static/uplot/, MIT) draws.

const STATE = new WeakMap();
const PALETTE = ["#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04",
                 "#db2777", "#4b5563", "#65a30d"];

function staticBase() {
  // Streamlit serves static/ at <base path>/app/static/; the page may sit under a base path.
  const path = window.location.pathname.replace(/[^/]*$/, "");
  return `${path}app/static/uplot/`;
}

function loadUPlot(root) {
  if (!root.querySelector("link[data-uplot]")) {
    const css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = staticBase() + "uPlot.min.css";
    css.dataset.uplot = "1";
    root.appendChild(css);
  }
  if (!window.__ertUPlot) {
    window.__ertUPlot = new Promise((resolve, reject) => {
      if (window.uPlot) { resolve(window.uPlot); return; }
      const script = document.createElement("script");
      script.src = staticBase() + "uPlot.iife.min.js";
      script.onload = () => resolve(window.uPlot);
      script.onerror = () => reject(new Error("uPlot could not be loaded from static/uplot/"));
      document.head.appendChild(script);
    });
  }
  return window.__ertUPlot;
}

// Chart definitions: title, unit, series (label + how to read it from the columns).
function chartSpecs(cols) {
  const cores = (cols.cores || []).map((_, i) => ({ label: `core ${i}`, get: c => c.cores[i] }));
  const specs = [
    { id: "cpu", title: "CPU %", pct: true, unit: " %",
      series: [{ label: "total", get: c => c.cpu, width: 2 }, ...cores] },
    { id: "mem", title: "Memory %", pct: true, unit: " %",
      series: [{ label: "RAM", get: c => c.ram, width: 2 }, { label: "swap", get: c => c.swap }] },
    { id: "proc_cpu", title: "Processes: CPU % (100 = one core)", unit: " %",
      series: [{ label: "ERT app", get: c => c.app_cpu }, { label: "evaluation workers", get: c => c.workers_cpu }] },
    { id: "proc_mem", title: "Processes: resident memory (GB)", unit: " GB", digits: 2,
      series: [{ label: "ERT app", get: c => c.app_rss }, { label: "evaluation workers", get: c => c.workers_rss }] },
  ];
  for (const gpu of Object.keys(cols.gpus || {})) {
    specs.push({ id: `gpu${gpu}`, title: `GPU${gpu} %`, pct: true, unit: " %",
      series: [{ label: "utilisation", get: c => (c.gpus[gpu] || {}).util },
               { label: "memory", get: c => (c.gpus[gpu] || {}).mem }] });
  }
  return specs;
}

function thresholdPlugin(st) {
  return { hooks: { draw: [u => {
    if (!u.__pct) return;
    const y = u.valToPos(st.threshold, "y", true);
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = "#dc2626";
    ctx.setLineDash([6, 4]);
    ctx.beginPath();
    ctx.moveTo(u.bbox.left, y);
    ctx.lineTo(u.bbox.left + u.bbox.width, y);
    ctx.stroke();
    ctx.restore();
  }] } };
}

// The time axis: one line of "HH:MM:SS" per tick, at least TICK_SPACE px apart, so labels
// never run into each other (uPlot's default wrote "12/6/26 9:08pm" under each minute and
// they overlapped at 1400 px); each chart box records its ticks (data-x-ticks: label and
// x in CSS px from the canvas's left edge) for whoever checks the layout.
const TICK_SPACE = 90;

function clock(st) {
  const hms = st.uPlot.fmtDate("{HH}:{mm}:{ss}");
  return seconds => hms(new Date(seconds * 1000));
}

function newest(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] != null) return values[i];
  return null;
}

function tickRecorder(box) {
  return { hooks: { draw: [u => {
    const left = u.bbox.left / devicePixelRatio;
    box.dataset.xTicks = JSON.stringify((u.__ertTicks || []).map((v, i) => (
      { label: u.__ertLabels[i], x: Math.round(left + u.valToPos(v, "x")) })));
    box.dataset.width = String(u.width);
  }] } };
}

function append(st, cols) {
  const n = (cols.time || []).length;
  if (!n) return;
  const specs = chartSpecs(cols);
  for (const spec of specs) {
    let store = st.series[spec.id];
    if (!store) {
      store = st.series[spec.id] = { spec, x: [], ys: spec.series.map(() => []) };
      // a GPU (or core) seen late: pad the old samples so every array has one length
      store.x = st.series.cpu ? st.series.cpu.x.slice() : [];
      store.ys = spec.series.map(() => store.x.map(() => null));
    }
    for (let i = 0; i < n; i++) {
      store.x.push(cols.time[i]);
      spec.series.forEach((s, k) => {
        const col = s.get(cols);
        store.ys[k].push(col ? col[i] : null);
      });
    }
    const cutoff = store.x[store.x.length - 1] - st.keepSeconds;
    let drop = 0;
    while (drop < store.x.length && store.x[drop] < cutoff) drop++;
    if (drop) {
      store.x.splice(0, drop);
      store.ys.forEach(y => y.splice(0, drop));
    }
  }
  st.points = st.series.cpu ? st.series.cpu.x.length : 0;
}

function draw(st) {
  if (!st.uPlot) return;
  const width = Math.max(280, Math.floor((st.grid.clientWidth || 900) / 2) - 16);
  for (const [id, store] of Object.entries(st.series)) {
    const last = store.x[store.x.length - 1];
    const scales = { x: { time: true, min: last - st.window, max: last } };
    if (store.spec.pct) scales.y = { range: [0, 100] };
    if (!st.plots[id]) {
      const box = document.createElement("div");
      box.className = "ert-chart";
      box.dataset.chart = id;
      const title = document.createElement("div");
      title.className = "ert-chart-title";
      title.textContent = store.spec.title;
      box.appendChild(title);
      st.grid.appendChild(box);
      const clockOf = clock(st);
      const spec = store.spec;
      // The legend shows the values under the cursor, and the newest ones otherwise (not
      // a row of dashes).
      const opts = {
        width, height: 200, scales, legend: { live: true }, padding: [8, 32, 0, 0],
        series: [{ label: "time", value: (u, v, i, idx) => {
          const t = idx == null ? newest(u.data[0]) : v;
          return t == null ? "—" : clockOf(t);
        } }, ...spec.series.map((s, k) => ({
          label: s.label, stroke: PALETTE[k % PALETTE.length], width: s.width || 1,
          value: (u, v, i, idx) => {
            const shown = idx == null ? newest(u.data[i]) : v;
            return shown == null ? "—" : shown.toFixed(spec.digits || 1) + (spec.unit || "");
          } }))],
        axes: [{ space: TICK_SPACE,
                 values: (u, splits) => {
                   u.__ertTicks = splits;
                   return (u.__ertLabels = splits.map(clockOf));
                 } },
               { size: 40 }],
        plugins: [thresholdPlugin(st), tickRecorder(box)],
      };
      st.plots[id] = new st.uPlot(opts, [store.x, ...store.ys], box);
      st.plots[id].__pct = !!store.spec.pct;
    } else {
      const plot = st.plots[id];
      if (plot.width !== width) plot.setSize({ width, height: 200 });
      plot.batch(() => {
        plot.setData([store.x, ...store.ys], false);
        plot.setScale("x", { min: last - st.window, max: last });
      });
      plot.setLegend({ idx: plot.cursor.idx });  // the newest values, unless hovering
    }
  }
}

function tiles(st, latest) {
  if (!latest) return;
  const t = st.root.querySelector(".ert-tiles");
  const tile = (label, value, detail, name) =>
    `<div class="ert-tile" data-tile="${name}"><div class="ert-tile-label">${label}</div>` +
    `<div class="ert-tile-value">${value}</div><div class="ert-tile-detail">${detail || ""}</div></div>`;
  t.innerHTML =
    tile("CPU", latest.cpu, "", "cpu") + tile("RAM", latest.ram, latest.ram_detail, "ram") +
    tile("Swap", latest.swap, latest.swap_detail, "swap") +
    tile("ERT app", latest.app, latest.app_detail, "app") +
    tile("Evaluation workers", latest.workers, latest.workers_detail, "workers");
  const warn = st.root.querySelector(".ert-warnings");
  warn.innerHTML = (latest.warnings || []).map(w =>
    `<div class="ert-warning">⚠ ${w} (threshold ${st.threshold}%)</div>`).join("");
  const gpus = st.root.querySelector(".ert-gpus");
  gpus.innerHTML = latest.gpus.length
    ? latest.gpus.map(g => `<div class="ert-gpu" data-gpu="${g.index}">${g.label}</div>`).join("")
    : `<div class="ert-gpu-none">No GPU visible (no NVIDIA driver or NVML on this machine): GPU charts are not shown.</div>`;
}

function schedule(st) {
  clearTimeout(st.timer);
  st.timer = null;
  if (document.visibilityState !== "visible" || st.stopped) return;
  st.timer = setTimeout(() => {
    st.timer = null;
    if (document.visibilityState === "visible") st.setTrigger("tick", { have: st.seq, n: ++st.ticks });
  }, st.interval * 1000);
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let st = STATE.get(parentElement);
  if (!st) {
    const root = document.createElement("div");
    root.className = "ert-monitor";
    root.innerHTML = '<div class="ert-warnings"></div><div class="ert-tiles"></div>' +
      '<div class="ert-grid"></div><div class="ert-gpus"></div>';
    parentElement.appendChild(root);
    st = { root, grid: root.querySelector(".ert-grid"), series: {}, plots: {}, seq: -1,
           ticks: 0, points: 0, uPlot: null, timer: null, stopped: false };
    st.onVisible = () => schedule(st);
    document.addEventListener("visibilitychange", st.onVisible);
    STATE.set(parentElement, st);
  }
  st.stopped = false;
  st.setTrigger = setTriggerValue;
  st.interval = data.interval;
  st.window = data.window;
  st.keepSeconds = data.keep;
  st.threshold = data.threshold;
  if (data.reset) {  // Python could not send the samples after ours: start over
    st.series = {};
    Object.values(st.plots).forEach(p => p.destroy());
    st.plots = {};
    st.grid.innerHTML = "";
  }
  if (data.seq !== st.seq && data.columns) {
    append(st, data.columns);
    st.seq = data.seq;
  }
  tiles(st, data.latest);
  st.root.dataset.seq = String(st.seq);
  st.root.dataset.points = String(st.points);
  const ready = st.uPlot ? Promise.resolve(st.uPlot) : loadUPlot(parentElement);
  ready.then(u => { st.uPlot = u; draw(st); }).catch(err => {
    st.root.querySelector(".ert-warnings").textContent = String(err);
  });
  schedule(st);
  return () => {
    st.stopped = true;
    clearTimeout(st.timer);
    st.timer = null;
  };
}

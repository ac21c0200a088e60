// The cluster view: counts of nodes by state and pods first, then one tile per node (Ready/NotReady,
// cordoned, CPU and memory requested by its pods against allocatable, pod count). Only the tiles in view
// are in the DOM, so thousands of nodes stay fast. The per-node pod figures come summed from the gateway
// (`watchNodeSums`: a snapshot then the changed nodes, live), so the page never lists pods; a user the
// gateway refuses them to (who may not list every namespace's pods) gets them summed here from the pods
// their token may list, each kept as a few numbers, never whole.

import { ApiError, informer, watchNodeSums } from "../api.js";
import { cordon } from "../actions.js";
import { bar, bytes, cores, fill, frameScheduler, h, quantity } from "../util.js";

const TILE_W = 232;
const TILE_H = 124;
const GAP = 8;
const PAGE = 5000; // pods per list page: counted as they come, never all in one body

function nodeSummary(node) {
  const ready = (node.status?.conditions || []).find((c) => c.type === "Ready");
  const allocatable = node.status?.allocatable || node.status?.capacity || {};
  return {
    name: node.metadata.name,
    ready: ready?.status === "True",
    cordoned: Boolean(node.spec?.unschedulable),
    cpu: quantity(allocatable.cpu),
    memory: quantity(allocatable.memory),
  };
}

// What a pod costs its node: the sum of its containers' requests (init containers: the largest).
function podSummary(pod) {
  const sum = (containers, key) => (containers || []).reduce((t, c) => t + quantity(c.resources?.requests?.[key]), 0);
  const max = (containers, key) => Math.max(0, ...(containers || []).map((c) => quantity(c.resources?.requests?.[key])));
  const spec = pod.spec || {};
  const phase = pod.status?.phase;
  return {
    node: spec.nodeName || "",
    live: phase !== "Succeeded" && phase !== "Failed",
    running: phase === "Running",
    cpu: Math.max(sum(spec.containers, "cpu"), max(spec.initContainers, "cpu")),
    memory: Math.max(sum(spec.containers, "memory"), max(spec.initContainers, "memory")),
  };
}

const key = (obj) => `${obj.metadata.namespace}/${obj.metadata.name}`;

export function mount(root, params, query = new URLSearchParams()) {
  const nodes = new Map();
  const pods = new Map();
  const usage = new Map(); // node name ("": unscheduled) -> {cpu (cores), memory (bytes), pods, notRunning}
  let podsError = "";
  let order = [];
  let orderStale = true;
  let listed = { nodes: false, pods: false };
  let filter = "";
  let stateFilter = "all";
  let lastSummary = "";

  const account = (summary, sign) => {
    if (!summary.live) return;
    const u = usage.get(summary.node) || { cpu: 0, memory: 0, pods: 0, notRunning: 0 };
    u.cpu += sign * summary.cpu;
    u.memory += sign * summary.memory;
    u.pods += sign;
    u.notRunning += sign * !summary.running;
    usage.set(summary.node, u);
  };
  // the gateway's totals: [pods, cpu millicores, memory bytes, notRunning]
  const fromTotals = ([pods, cpu, memory, notRunning]) => ({ pods, cpu: cpu / 1000, memory, notRunning });

  const summary = h("div", { class: "summary", id: "cluster-summary", "aria-live": "polite" });
  const search = h("input", { type: "search", id: "node-filter", placeholder: "filter nodes by name",
    "aria-label": "filter nodes by name", oninput: () => { filter = search.value.trim(); orderStale = true; schedule(); } });
  const states = h("select", { id: "node-state", "aria-label": "node state",
    onchange: () => { stateFilter = states.value; orderStale = true; schedule(); } },
    ["all", "ready", "notready", "cordoned"].map((s) => h("option", { value: s, text: s })));
  const spacer = h("div", { class: "tiles-spacer" });
  const viewport = h("div", { class: "tiles", id: "node-tiles", tabindex: "-1" }, spacer);
  fill(root, h("h1", { text: "Cluster" }), summary, h("div", { class: "toolbar" }, search, states), viewport);

  const stateOf = (n) => (n.cordoned ? "cordoned" : n.ready ? "ready" : "notready");

  function renderSummary() {
    if (!listed.nodes) { fill(summary, h("span", { text: "loading…" })); return; }
    const counts = { ready: 0, notready: 0, cordoned: 0 };
    let cpu = 0, memory = 0, cpuUsed = 0, memoryUsed = 0, podCount = 0;
    for (const n of nodes.values()) {
      counts[n.ready ? "ready" : "notready"] += 1;
      if (n.cordoned) counts.cordoned += 1;
      cpu += n.cpu; memory += n.memory;
    }
    for (const [name, u] of usage) {
      if (!name) continue;
      cpuUsed += u.cpu; memoryUsed += u.memory; podCount += u.pods;
    }
    const unscheduled = usage.get("")?.pods || 0;
    const signature = [listed.pods, nodes.size, counts.ready, counts.notready, counts.cordoned, podCount, cpuUsed, cpu,
      memoryUsed, memory, unscheduled, podsError].join("|");
    if (signature === lastSummary) return;
    lastSummary = signature;
    fill(summary,
      h("span", { class: "stat", "data-stat": "nodes" }, h("b", { text: String(nodes.size) }), " nodes"),
      h("span", { class: "stat ok", "data-stat": "ready" }, h("b", { text: String(counts.ready) }), " Ready"),
      h("span", { class: `stat ${counts.notready ? "bad" : ""}`, "data-stat": "notready" },
        h("b", { text: String(counts.notready) }), " NotReady"),
      h("span", { class: "stat warn", "data-stat": "cordoned" }, h("b", { text: String(counts.cordoned) }), " cordoned"),
      podsError ? h("span", { class: "stat bad", "data-stat": "pods-error", text: `pods not shown: ${podsError}` })
        : h("span", { class: "stat", "data-stat": "pods" }, h("b", { text: String(podCount) }),
          listed.pods ? " pods on nodes" : " pods on nodes (counting…)"),
      unscheduled ? h("span", { class: "stat warn", "data-stat": "unscheduled" }, h("b", { text: String(unscheduled) }),
        " unscheduled") : null,
      h("span", { class: "stat" }, "CPU ", bar(cpuUsed, cpu, `${cores(cpuUsed)} / ${cores(cpu)}`)),
      h("span", { class: "stat" }, "memory ", bar(memoryUsed, memory, `${bytes(memoryUsed)} / ${bytes(memory)}`)));
  }

  function tile(n) {
    const u = usage.get(n.name) || { cpu: 0, memory: 0, pods: 0, notRunning: 0 };
    const state = stateOf(n);
    const label = n.cordoned ? `${n.ready ? "Ready" : "NotReady"}, cordoned` : n.ready ? "Ready" : "NotReady";
    return h("article", { class: `tile ${state}`, "data-node": n.name },
      h("header", {}, h("span", { class: "tile-name", text: n.name, title: n.name }),
        h("span", { class: `badge ${state}`, text: label })),
      h("div", { class: "tile-row" }, "CPU ", bar(u.cpu, n.cpu, `${cores(u.cpu)} / ${cores(n.cpu)}`)),
      h("div", { class: "tile-row" }, "mem ", bar(u.memory, n.memory, `${bytes(u.memory)} / ${bytes(n.memory)}`)),
      h("div", { class: "tile-row" }, h("span", { class: "pods",
        text: `${u.pods} pod${u.pods === 1 ? "" : "s"}${u.notRunning ? ` (${u.notRunning} not running)` : ""}` }),
        h("button", { type: "button", class: "small", text: n.cordoned ? "Uncordon" : "Cordon",
          onclick: () => cordon(n.name, !n.cordoned) })));
  }

  // Tiles in view, keyed by node: one is rebuilt only when what it shows changed, else just moved.
  const drawn = new Map(); // node name -> {el, signature}
  function renderTiles() {
    if (orderStale) {
      order = [...nodes.values()]
        .filter((n) => (!filter || n.name.includes(filter)) && (stateFilter === "all" || stateOf(n) === stateFilter ||
          (stateFilter === "notready" && !n.ready)))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      orderStale = false;
    }
    const columns = Math.max(1, Math.floor((viewport.clientWidth + GAP) / (TILE_W + GAP)));
    const rows = Math.ceil(order.length / columns);
    spacer.style.height = `${rows * (TILE_H + GAP)}px`;
    const first = Math.max(0, Math.floor(viewport.scrollTop / (TILE_H + GAP)) - 1);
    const last = Math.min(rows, Math.ceil((viewport.scrollTop + viewport.clientHeight) / (TILE_H + GAP)) + 1);
    const keep = new Set();
    for (let row = first; row < last; row += 1) {
      for (let col = 0; col < columns; col += 1) {
        const n = order[row * columns + col];
        if (!n) break;
        const u = usage.get(n.name) || { cpu: 0, memory: 0, pods: 0, notRunning: 0 };
        const signature = `${n.ready}|${n.cordoned}|${n.cpu}|${n.memory}|${u.cpu}|${u.memory}|${u.pods}|${u.notRunning}`;
        let entry = drawn.get(n.name);
        if (!entry || entry.signature !== signature) {
          const el = tile(n);
          if (entry) entry.el.replaceWith(el); else spacer.append(el);
          entry = { el, signature };
          drawn.set(n.name, entry);
        }
        entry.el.style.transform = `translate(${col * (TILE_W + GAP)}px, ${row * (TILE_H + GAP)}px)`;
        keep.add(n.name);
      }
    }
    for (const [name, entry] of drawn) {
      if (!keep.has(name)) { entry.el.remove(); drawn.delete(name); }
    }
  }

  const render = () => {
    const started = performance.now();
    renderSummary();
    renderTiles();
    const took = performance.now() - started;
    const stats = window.shoalConsole.renders;
    stats.count += 1;
    stats.totalMs += took;
    stats.maxMs = Math.max(stats.maxMs, took);
    if (listed.nodes && !window.shoalConsole.nodesRender) window.shoalConsole.nodesRender = performance.now();
    if (listed.nodes && listed.pods && !window.shoalConsole.firstRender) {
      window.shoalConsole.firstRender = performance.now();
      root.dataset.rendered = "true";
    }
  };
  const schedule = frameScheduler(render);
  viewport.addEventListener("scroll", schedule, { passive: true });
  const resize = new ResizeObserver(schedule);
  resize.observe(viewport);
  render();

  const stopNodes = informer("/api/v1/nodes", {
    list(items) { nodes.clear(); for (const n of items) nodes.set(n.metadata.name, nodeSummary(n)); listed.nodes = true; orderStale = true; schedule(); },
    event(type, node) {
      const name = node.metadata.name;
      const old = nodes.get(name);
      if (type === "DELETED") { nodes.delete(name); orderStale = true; }
      else if (!old) { nodes.set(name, nodeSummary(node)); orderStale = true; }
      else { // a heartbeat mostly: updated in place, the order is kept unless the state filter is concerned
        const before = stateOf(old);
        Object.assign(old, nodeSummary(node));
        if (stateOf(old) !== before && stateFilter !== "all") orderStale = true;
      }
      schedule();
    },
  });
  // The pods this user may list, summed here: the fallback when the gateway does not serve the summary to them.
  const sumPods = () => informer("/api/v1/pods", {
    pages: {
      size: PAGE,
      reset() { pods.clear(); usage.clear(); listed.pods = false; },
      add(items) { for (const p of items) { const s = podSummary(p); pods.set(key(p), s); account(s, 1); } schedule(); },
      done() { listed.pods = true; podsError = ""; schedule(); },
    },
    event(type, pod) {
      const k = key(pod);
      const old = pods.get(k);
      if (old) account(old, -1);
      if (type === "DELETED") pods.delete(k);
      else { const s = podSummary(pod); pods.set(k, s); account(s, 1); }
      schedule();
    },
    error(e) {
      if (!(e instanceof ApiError)) return;
      podsError = e.message; listed.pods = true; schedule();
      if (e.code === 403) stopPods();  // asking again every second will not change the answer
    },
  });
  // `#/nodes?pods=list`: sum the pods here even when the gateway would serve the summary (the benchmark's
  // baseline, and a check of the gateway's figures)
  const sumHere = query.get("pods") === "list";
  if (sumHere) root.dataset.podSource = "pods";
  let stopPods = sumHere ? sumPods() : watchNodeSums({
    snapshot(totals) {
      usage.clear();
      for (const [name, t] of Object.entries(totals)) usage.set(name, fromTotals(t));
      listed.pods = true;
      root.dataset.podSource = "summary";
      schedule();
    },
    changed(totals) {
      for (const [name, t] of Object.entries(totals)) {
        if (t === null) usage.delete(name); else usage.set(name, fromTotals(t));
      }
      schedule();
    },
    refused() { root.dataset.podSource = "pods"; stopPods = sumPods(); },
  });
  return () => { stopNodes(); stopPods(); resize.disconnect(); delete root.dataset.podSource; };
}

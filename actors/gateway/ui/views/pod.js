// One pod: its containers (state, restarts), conditions, events and its logs streaming (follow, tail);
// the log stream stops when the view is left.

import { informer, lines, request } from "../api.js";
import { remove } from "../actions.js";
import { age, fill, frameScheduler, h } from "../util.js";
import { podStatus, restarts } from "./workloads.js";

const MAX_LOG_LINES = 5000;

function state(c) {
  const [name, detail] = Object.entries(c.state || {})[0] || ["unknown", {}];
  const reason = detail?.reason ? ` (${detail.reason})` : "";
  return `${name}${reason}`;
}

export function mount(root, { namespace, name }) {
  let pod = null;
  const events = new Map();
  const head = h("div", { id: "pod-head" });
  const containers = h("div", { id: "pod-containers" });
  const conditions = h("div", { id: "pod-conditions" });
  const eventList = h("div", { id: "pod-events" });
  const logBox = h("pre", { id: "pod-logs", class: "logs", tabindex: "0", "aria-label": "logs", "aria-live": "off" });
  const containerPick = h("select", { id: "log-container", "aria-label": "container", onchange: () => startLogs() });
  const tail = h("input", { id: "log-tail", type: "number", min: "0", value: "100", "aria-label": "tail lines",
    onchange: () => startLogs() });
  const follow = h("input", { id: "log-follow", type: "checkbox", checked: true, onchange: () => startLogs() });
  fill(root,
    h("p", {}, h("a", { href: `#/ns/${encodeURIComponent(namespace)}/workloads`, text: `← workloads in ${namespace}` })),
    h("h1", {}, "Pod ", h("span", { class: "mono", text: name })), head,
    h("section", {}, h("h2", { text: "Containers" }), containers),
    h("section", {}, h("h2", { text: "Conditions" }), conditions),
    h("section", {}, h("h2", { text: "Events" }), eventList),
    h("section", {}, h("h2", { text: "Logs" }),
      h("div", { class: "toolbar" }, h("label", {}, "container ", containerPick), h("label", {}, "tail ", tail),
        h("label", {}, follow, " follow")), logBox));

  const render = () => {
    if (!pod) { fill(head, h("p", { class: "empty", text: "not found (yet)" })); return; }
    fill(head, h("dl", { class: "facts" },
      h("dt", { text: "status" }), h("dd", { id: "pod-status", text: podStatus(pod) }),
      h("dt", { text: "node" }), h("dd", { text: pod.spec?.nodeName || "(not scheduled)" }),
      h("dt", { text: "pod IP" }), h("dd", { text: pod.status?.podIP || "" }),
      h("dt", { text: "restarts" }), h("dd", { text: String(restarts(pod)) }),
      h("dt", { text: "age" }), h("dd", { text: age(pod.metadata.creationTimestamp) })),
    h("button", { type: "button", class: "danger", text: "Delete pod", onclick: () => remove("v1", "pods", namespace, name) }));
    const statuses = new Map((pod.status?.containerStatuses || []).map((c) => [c.name, c]));
    fill(containers, h("table", {}, h("thead", {}, h("tr", {}, ["name", "image", "state", "ready", "restarts"]
      .map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, (pod.spec?.containers || []).map((c) => {
      const s = statuses.get(c.name) || {};
      return h("tr", {}, h("th", { scope: "row", text: c.name }), h("td", { class: "mono", text: c.image }),
        h("td", { text: state(s) }), h("td", { text: s.ready ? "yes" : "no" }), h("td", { text: String(s.restartCount || 0) }));
    }))));
    fill(conditions, (pod.status?.conditions || []).map((c) => h("span", { class: `badge ${c.status === "True" ? "ready" : "notready"}`,
      text: `${c.type}: ${c.status}`, title: c.message || "" })));
    const names = (pod.spec?.containers || []).map((c) => c.name);
    if (containerPick.options.length !== names.length) {
      fill(containerPick, names.map((n) => h("option", { value: n, text: n })));
      startLogs();
    }
    const sortedEvents = [...events.values()].sort((a, b) => stamp(a) - stamp(b));
    fill(eventList, sortedEvents.length ? h("ul", { class: "events" }, sortedEvents.map(eventLine))
      : h("p", { class: "empty", text: "no events" }));
  };
  const schedule = frameScheduler(render);

  const stopPod = informer(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, {
    list(items) { pod = items[0] || null; schedule(); },
    event(type, o) { pod = type === "DELETED" ? null : o; schedule(); },
  }, { fieldSelector: `metadata.name=${name}` });
  const stopEvents = informer(`/api/v1/namespaces/${encodeURIComponent(namespace)}/events`, {
    list(items) { events.clear(); for (const e of items) events.set(e.metadata.name, e); schedule(); },
    event(type, e) { if (type === "DELETED") events.delete(e.metadata.name); else events.set(e.metadata.name, e); schedule(); },
  }, { fieldSelector: `involvedObject.name=${name}` });

  let logs = null;
  async function startLogs() {
    if (logs) logs.abort();
    const controller = new AbortController();
    logs = controller;
    logBox.textContent = "";
    if (!containerPick.value) return;
    const query = new URLSearchParams({ container: containerPick.value, tailLines: tail.value || "100" });
    if (follow.checked) query.set("follow", "true");
    try {
      const response = await request(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}/log?${query}`,
        { signal: controller.signal, accept: "text/plain" });
      let count = 0;
      for await (const line of lines(response)) {
        logBox.append(`${line}\n`);
        count += 1;
        if (count > MAX_LOG_LINES) logBox.firstChild?.remove();
        logBox.scrollTop = logBox.scrollHeight;
      }
    } catch (e) {
      if (!controller.signal.aborted) logBox.append(h("span", { class: "error", text: `logs: ${e.message}\n` }));
    }
  }
  render();
  return () => { stopPod(); stopEvents(); if (logs) logs.abort(); };
}

const stamp = (e) => Date.parse(e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp || 0) || 0;

export function eventLine(e) {
  const when = e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp;
  const count = e.count > 1 ? ` (×${e.count})` : "";
  return h("li", { class: e.type === "Warning" ? "warning" : "", "data-event": e.metadata.name },
    h("span", { class: "when", text: age(when) }), h("span", { class: `badge ${e.type === "Warning" ? "notready" : ""}`,
      text: e.type || "Normal" }),
    h("span", { class: "reason", text: e.reason || "" }),
    h("span", { class: "object", text: `${e.involvedObject?.kind || ""}/${e.involvedObject?.name || ""}` }),
    h("span", { class: "message", text: `${e.message || ""}${count}` }));
}

// The cluster's event stream, live, newest first; filtered by namespace, kind, object and type (the
// filters are in the URL, so a filtered view is a link). Keeps the newest MAX_EVENTS.

import { informer } from "../api.js";
import { fill, frameScheduler, h } from "../util.js";
import { eventLine } from "./pod.js";

const MAX_EVENTS = 1000;
const FIELDS = ["namespace", "kind", "object", "type"];

const stamp = (e) => Date.parse(e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp || 0) || 0;
const key = (e) => `${e.metadata.namespace}/${e.metadata.name}`;

export function mount(root, params, query) {
  const events = new Map();
  const inputs = Object.fromEntries(FIELDS.map((f) => [f, f === "type"
    ? h("select", { id: `filter-${f}`, "aria-label": f }, ["", "Normal", "Warning"].map((t) =>
      h("option", { value: t, text: t || "any type", selected: query.get(f) === t })))
    : h("input", { id: `filter-${f}`, type: "search", placeholder: f, "aria-label": f, value: query.get(f) || "" })]));
  const list = h("ul", { class: "events", id: "event-list", "aria-live": "polite" });
  const count = h("p", { class: "muted", id: "event-count" });
  const onFilter = () => {
    const q = new URLSearchParams(FIELDS.filter((f) => inputs[f].value).map((f) => [f, inputs[f].value]));
    history.replaceState(null, "", `#/events${q.toString() ? `?${q}` : ""}`);
    schedule();
  };
  for (const f of FIELDS) inputs[f].addEventListener(f === "type" ? "change" : "input", onFilter);
  fill(root, h("h1", { text: "Events" }), h("div", { class: "toolbar" }, FIELDS.map((f) => inputs[f])), count, list);

  const matches = (e) => {
    const v = (f) => inputs[f].value.trim();
    return (!v("namespace") || e.metadata.namespace === v("namespace"))
      && (!v("kind") || (e.involvedObject?.kind || "").toLowerCase() === v("kind").toLowerCase())
      && (!v("object") || (e.involvedObject?.name || "").includes(v("object")))
      && (!v("type") || e.type === v("type"));
  };
  const render = () => {
    const shown = [...events.values()].filter(matches).sort((a, b) => stamp(b) - stamp(a));
    count.textContent = `${shown.length} of ${events.size} events`;
    fill(list, shown.map(eventLine));
  };
  const schedule = frameScheduler(render);
  const trim = () => {
    if (events.size <= MAX_EVENTS) return;
    const oldest = [...events.values()].sort((a, b) => stamp(a) - stamp(b)).slice(0, events.size - MAX_EVENTS);
    for (const e of oldest) events.delete(key(e));
  };
  const stop = informer("/api/v1/events", {
    list(items) { events.clear(); for (const e of items) events.set(key(e), e); trim(); schedule(); },
    event(type, e) { if (type === "DELETED") events.delete(key(e)); else events.set(key(e), e); trim(); schedule(); },
  });
  render();
  return stop;
}

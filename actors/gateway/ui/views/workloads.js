// Workloads of one namespace, live: each workload kind the server serves (found through discovery:
// Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs) with desired/updated/ready/available and a
// rollout bar, Services with their endpoints, and the pods (crash-looping ones marked).

import { getJSON, informer, resourcePath, resources } from "../api.js";
import { remove, restart, scale } from "../actions.js";
import { age, bar, fill, frameScheduler, h } from "../util.js";

// kind -> how its columns read from the object
const WORKLOADS = [
  { groupVersion: "apps/v1", plural: "deployments", title: "Deployments", scalable: true, restartable: true,
    counts: (o) => ({ desired: o.spec?.replicas ?? 1, updated: o.status?.updatedReplicas ?? 0,
      ready: o.status?.readyReplicas ?? 0, available: o.status?.availableReplicas ?? 0 }) },
  { groupVersion: "apps/v1", plural: "statefulsets", title: "StatefulSets", scalable: true, restartable: true,
    counts: (o) => ({ desired: o.spec?.replicas ?? 1, updated: o.status?.updatedReplicas ?? 0,
      ready: o.status?.readyReplicas ?? 0, available: o.status?.availableReplicas ?? 0 }) },
  { groupVersion: "apps/v1", plural: "daemonsets", title: "DaemonSets", restartable: true,
    counts: (o) => ({ desired: o.status?.desiredNumberScheduled ?? 0, updated: o.status?.updatedNumberScheduled ?? 0,
      ready: o.status?.numberReady ?? 0, available: o.status?.numberAvailable ?? 0 }) },
  { groupVersion: "apps/v1", plural: "replicasets", title: "ReplicaSets", scalable: true,
    counts: (o) => ({ desired: o.spec?.replicas ?? 1, updated: o.status?.replicas ?? 0,
      ready: o.status?.readyReplicas ?? 0, available: o.status?.availableReplicas ?? 0 }) },
  { groupVersion: "batch/v1", plural: "jobs", title: "Jobs",
    counts: (o) => ({ desired: o.spec?.completions ?? 1, updated: o.status?.active ?? 0,
      ready: o.status?.ready ?? 0, available: o.status?.succeeded ?? 0 }),
    headings: ["completions", "active", "ready", "succeeded"] },
];

// A pod's status as kubectl prints it: a waiting or terminated reason wins over the phase.
export function podStatus(pod) {
  if (pod.metadata.deletionTimestamp) return "Terminating";
  for (const c of pod.status?.containerStatuses || []) {
    const reason = c.state?.waiting?.reason || c.state?.terminated?.reason;
    if (reason && reason !== "Completed") return reason;
  }
  return pod.status?.phase || "Pending";
}

export const restarts = (pod) => (pod.status?.containerStatuses || []).reduce((t, c) => t + (c.restartCount || 0), 0);

// A store of one collection, rendered on the next frame after each change.
function live(path, onChange) {
  const items = new Map();
  const stop = informer(path, {
    list(listed) { items.clear(); for (const o of listed) items.set(o.metadata.name, o); onChange(); },
    event(type, o) { if (type === "DELETED") items.delete(o.metadata.name); else items.set(o.metadata.name, o); onChange(); },
  });
  return { items, stop };
}

const sorted = (items) => [...items.values()].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));

function table(id, headings, rows, empty) {
  if (!rows.length) return h("p", { class: "empty", id, text: empty });
  return h("table", { id }, h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, rows));
}

export function mount(root, { namespace }) {
  const stops = [];
  const sections = h("div", { class: "sections" });
  const picker = h("select", { id: "namespace", "aria-label": "namespace",
    onchange: () => { location.hash = `#/ns/${encodeURIComponent(picker.value)}/workloads`; } },
  h("option", { value: namespace, text: namespace }));
  fill(root, h("h1", {}, "Workloads in ", picker), sections);
  getJSON("/api/v1/namespaces").then((list) => {
    const names = list.items.map((n) => n.metadata.name);
    if (!names.includes(namespace)) names.push(namespace);
    fill(picker, names.sort().map((n) => h("option", { value: n, text: n, selected: n === namespace })));
  }).catch(() => {});

  const stores = [];
  const render = () => {
    const parts = [];
    for (const { kind, store } of stores) {
      if (kind === "services" || kind === "endpoints" || kind === "pods") continue;
      const heads = kind.headings || ["desired", "updated", "ready", "available"];
      const rows = sorted(store.items).map((o) => {
        const c = kind.counts(o);
        const name = o.metadata.name;
        return h("tr", { "data-name": name },
          h("th", { scope: "row", text: name }),
          h("td", { text: String(c.desired) }), h("td", { text: String(c.updated) }),
          h("td", { text: String(c.ready) }), h("td", { text: String(c.available) }),
          h("td", {}, bar(Math.min(c.updated, c.available), c.desired, `${Math.min(c.updated, c.available)}/${c.desired}`)),
          h("td", { class: "actions" },
            kind.scalable && h("button", { type: "button", class: "small", text: "Scale",
              onclick: () => scale(kind.groupVersion, kind.plural, namespace, name, c.desired) }),
            kind.restartable && h("button", { type: "button", class: "small", text: "Restart",
              onclick: () => restart(kind.groupVersion, kind.plural, namespace, name) }),
            h("button", { type: "button", class: "small danger", text: "Delete",
              onclick: () => remove(kind.groupVersion, kind.plural, namespace, name) })));
      });
      parts.push(h("section", {}, h("h2", { text: kind.title }),
        table(kind.plural, ["name", ...heads, "rollout", ""], rows, `no ${kind.title.toLowerCase()}`)));
    }
    const services = stores.find((s) => s.kind === "services")?.store;
    const endpoints = stores.find((s) => s.kind === "endpoints")?.store;
    if (services) {
      const rows = sorted(services.items).map((s) => {
        const ep = endpoints?.items.get(s.metadata.name);
        const addresses = (ep?.subsets || []).flatMap((sub) => (sub.addresses || []).flatMap((a) =>
          (sub.ports || [{}]).map((p) => (p.port ? `${a.ip}:${p.port}` : a.ip))));
        const ports = (s.spec?.ports || []).map((p) => `${p.port}/${p.protocol || "TCP"}`).join(", ");
        return h("tr", { "data-name": s.metadata.name }, h("th", { scope: "row", text: s.metadata.name }),
          h("td", { text: s.spec?.type || "ClusterIP" }), h("td", { text: s.spec?.clusterIP || "" }),
          h("td", { text: ports }), h("td", { class: "endpoints", text: addresses.join(", ") || "none" }));
      });
      parts.push(h("section", {}, h("h2", { text: "Services" }),
        table("services", ["name", "type", "cluster IP", "ports", "endpoints"], rows, "no services")));
    }
    const pods = stores.find((s) => s.kind === "pods")?.store;
    if (pods) {
      const rows = sorted(pods.items).map((p) => {
        const status = podStatus(p);
        const bad = /BackOff|Error|Failed|Err/.test(status);
        return h("tr", { "data-name": p.metadata.name, class: bad ? "bad" : "" },
          h("th", { scope: "row" }, h("a", { href: `#/ns/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(p.metadata.name)}`,
            text: p.metadata.name })),
          h("td", {}, h("span", { class: `badge ${bad ? "notready" : status === "Running" ? "ready" : ""}`, text: status })),
          h("td", { text: String(restarts(p)) }), h("td", { text: p.spec?.nodeName || "" }),
          h("td", { text: age(p.metadata.creationTimestamp) }),
          h("td", { class: "actions" }, h("button", { type: "button", class: "small danger", text: "Delete",
            onclick: () => remove("v1", "pods", namespace, p.metadata.name) })));
      });
      parts.push(h("section", {}, h("h2", { text: "Pods" }),
        table("pods", ["name", "status", "restarts", "node", "age", ""], rows, "no pods")));
    }
    fill(sections, parts);
  };
  const schedule = frameScheduler(render);
  let stopped = false;
  resources().then((served) => {
    if (stopped) return;
    for (const kind of WORKLOADS) {
      if (!served.has(`${kind.groupVersion}/${kind.plural}`)) continue;
      stores.push({ kind, store: live(resourcePath(kind.groupVersion, kind.plural, namespace), schedule) });
    }
    for (const plural of ["services", "endpoints", "pods"]) {
      stores.push({ kind: plural, store: live(resourcePath("v1", plural, namespace), schedule) });
    }
    schedule();
  }).catch((e) => fill(sections, h("p", { class: "error", text: e.message })));
  stops.push(() => { stopped = true; for (const { store } of stores) store.stop(); });
  return () => stops.forEach((s) => s());
}

// Actions that change the cluster, each behind a confirmation dialog; an error is shown as the API's
// Status message. Requests are those kubectl sends: PATCH of the scale subresource, a template annotation
// for a rollout restart, DELETE, the node's spec.unschedulable, and server-side apply.

import { ApiError, request, resourcePath, resources } from "./api.js";
import { h, fill } from "./util.js";

const MERGE = "application/merge-patch+json";
const STRATEGIC = "application/strategic-merge-patch+json";

export function notify(message, kind = "info") {
  const toast = document.getElementById("toast");
  toast.className = `toast ${kind}`;
  toast.setAttribute("role", kind === "error" ? "alert" : "status");
  toast.title = "click to dismiss";
  toast.onclick = () => { toast.hidden = true; };
  toast.textContent = message;
  toast.hidden = false;
  clearTimeout(notify.timer);
  if (kind !== "error") notify.timer = setTimeout(() => { toast.hidden = true; }, 4000);
}

// Ask before acting: `body` (nodes) goes in the dialog; resolves to true when confirmed.
export function confirm(title, body, confirmLabel = "Confirm") {
  const dialog = document.getElementById("dialog");
  return new Promise((resolve) => {
    const ok = h("button", { type: "submit", value: "ok", class: "primary", id: "dialog-ok", text: confirmLabel });
    const cancel = h("button", { type: "button", id: "dialog-cancel", text: "Cancel",
      onclick: () => dialog.close("cancel") });
    const form = h("form", { method: "dialog" }, h("h2", { text: title }), body,
      h("div", { class: "dialog-buttons" }, cancel, ok));
    fill(dialog, form);
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    (body.querySelector?.("input, textarea") || ok).focus();
  });
}

async function act(what, run) {
  try {
    await run();
    notify(what, "ok");
    return true;
  } catch (e) {
    notify(e instanceof ApiError ? e.message : String(e), "error");
    return false;
  }
}

export async function scale(groupVersion, plural, namespace, name, current) {
  const input = h("input", { type: "number", min: "0", value: String(current), id: "scale-replicas",
    "aria-label": "replicas" });
  const body = h("label", {}, `Replicas of ${plural}/${name}: `, input);
  if (!(await confirm(`Scale ${name}`, body, "Scale"))) return false;
  const replicas = Number(input.value);
  return act(`${name} scaled to ${replicas}`, () => request(
    `${resourcePath(groupVersion, plural, namespace, name)}/scale`,
    { method: "PATCH", contentType: MERGE, body: { spec: { replicas } } }));
}

export async function restart(groupVersion, plural, namespace, name) {
  if (!(await confirm(`Restart ${name}`, h("p", { text: `Roll out every pod of ${plural}/${name} again?` }),
    "Restart"))) return false;
  const patch = { spec: { template: { metadata: { annotations: {
    "kubectl.kubernetes.io/restartedAt": new Date().toISOString().replace(/\.\d+Z$/, "Z") } } } } };
  return act(`${name} restarted`, () => request(resourcePath(groupVersion, plural, namespace, name),
    { method: "PATCH", contentType: STRATEGIC, body: patch }));
}

export async function remove(groupVersion, plural, namespace, name) {
  if (!(await confirm(`Delete ${name}`, h("p", { text: `Delete ${plural}/${name}${namespace ? ` in ${namespace}` : ""}?` }),
    "Delete"))) return false;
  return act(`${name} deleted`, () => request(resourcePath(groupVersion, plural, namespace, name),
    { method: "DELETE", body: { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy: "Background" } }));
}

export async function cordon(name, unschedulable) {
  const verb = unschedulable ? "Cordon" : "Uncordon";
  const text = unschedulable ? `Stop scheduling new pods on ${name}?` : `Allow new pods on ${name} again?`;
  if (!(await confirm(`${verb} ${name}`, h("p", { text }), verb))) return false;
  return act(`${name} ${unschedulable ? "cordoned" : "uncordoned"}`, () => request(`/api/v1/nodes/${encodeURIComponent(name)}`,
    { method: "PATCH", contentType: MERGE, body: { spec: { unschedulable: unschedulable || null } } }));
}

// The fields apply needs for its URL, read from one YAML or JSON document; the server parses the document
// itself (the gateway reads YAML for application/apply-patch+yaml), so no YAML parser runs here.
export function manifestTarget(text) {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    const obj = JSON.parse(trimmed);
    return { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata?.name, namespace: obj.metadata?.namespace };
  }
  if (/^---\s*$/m.test(trimmed.replace(/^---\s*\n/, ""))) throw new Error("paste one document (no ---)");
  const top = (key) => (new RegExp(`^${key}:\\s*["']?([^"'#\\s]+)`, "m").exec(trimmed) || [])[1];
  const metadata = /^metadata:\s*\n((?:[ \t]+.*\n?|\s*\n)*)/m.exec(trimmed);
  const inMeta = (key) => metadata && (new RegExp(`^([ \\t]+)${key}:\\s*["']?([^"'#\\s]+)`, "m").exec(metadata[1]) || [])[2];
  return { apiVersion: top("apiVersion"), kind: top("kind"), name: inMeta("name"), namespace: inMeta("namespace") };
}

export async function apply(defaultNamespace) {
  const area = h("textarea", { id: "apply-manifest", rows: "16", cols: "70", spellcheck: "false",
    "aria-label": "manifest (YAML or JSON, one document)" });
  const body = h("div", {}, h("p", { text: "Paste one manifest (YAML or JSON). It is applied server-side " +
    "(field manager shoal-console)." }), area);
  if (!(await confirm("Apply a manifest", body, "Apply"))) return false;
  return act("applied", async () => {
    const target = manifestTarget(area.value);
    if (!target.apiVersion || !target.kind || !target.name) {
      throw new Error("the manifest needs apiVersion, kind and metadata.name");
    }
    const found = [...(await resources()).values()].find(
      (r) => r.groupVersion === target.apiVersion && r.kind === target.kind);
    if (!found) throw new Error(`the server has no kind ${target.kind} in ${target.apiVersion}`);
    const namespace = found.namespaced ? target.namespace || defaultNamespace || "default" : null;
    const path = resourcePath(found.groupVersion, found.name, namespace, target.name);
    await request(`${path}?fieldManager=shoal-console`,
      { method: "PATCH", contentType: "application/apply-patch+yaml", body: area.value });
  });
}

// The console's shell: login, hash routes (one URL per view), and mounting/unmounting views. A view is
// `mount(root, params, query) -> stop`; leaving a view stops its watches and log streams.

import { getJSON, onUnauthorized, session } from "./api.js";
import { apply } from "./actions.js";
import { fill, h } from "./util.js";
import * as cluster from "./views/cluster.js";
import * as events from "./views/events.js";
import * as pod from "./views/pod.js";
import * as workloads from "./views/workloads.js";

// What the tests and the benchmark read: the current route, when the cluster view first drew its nodes and
// when it first drew both lists (ms since navigation start), and how long its frames took.
window.shoalConsole = { nodesRender: null, firstRender: null, view: null, renders: { count: 0, totalMs: 0, maxMs: 0 } };

const ROUTES = [
  [/^\/nodes$/, cluster, () => ({})],
  [/^\/ns\/([^/]+)\/workloads$/, workloads, (m) => ({ namespace: decodeURIComponent(m[1]) })],
  [/^\/ns\/([^/]+)\/pods\/([^/]+)$/, pod, (m) => ({ namespace: decodeURIComponent(m[1]), name: decodeURIComponent(m[2]) })],
  [/^\/events$/, events, () => ({})],
];

const main = document.getElementById("view");
let stop = null;
let loginMessage = "";

function loginView() {
  const input = h("input", { type: "password", id: "token", autocomplete: "off", required: true,
    "aria-describedby": "login-help" });
  const message = h("p", { id: "login-message", class: "error", role: "alert", text: loginMessage });
  const form = h("form", { class: "login", id: "login-form", onsubmit: async (event) => {
    event.preventDefault();
    session.login(input.value.trim());
    try {
      await getJSON("/api/v1/namespaces?limit=1"); // proves the token: a 401 comes back here
      loginMessage = "";
      const target = sessionStorage.getItem("shoal.after-login") || "#/nodes";
      sessionStorage.removeItem("shoal.after-login");
      if (location.hash === target) route(); else location.hash = target; // a hash change routes by itself
    } catch (e) {
      session.logout();
      message.textContent = e.message;
    }
  } },
  h("h1", { text: "Shoal console" }),
  h("label", { for: "token", text: "Bearer token" }), input,
  h("p", { id: "login-help", class: "muted", text: "The admin token is the token of the kubeconfig `shoal up` " +
    "wrote (users[].user.token). It is kept in this tab only (sessionStorage)." }),
  message, h("button", { type: "submit", class: "primary", id: "login-submit", text: "Log in" }));
  fill(main, form);
  input.focus();
}

onUnauthorized((message) => {
  session.logout();
  loginMessage = message;
  route();
});

function route() {
  if (stop) { stop(); stop = null; }
  document.body.classList.toggle("logged-in", Boolean(session.token()));
  const [path, search] = location.hash.replace(/^#/, "").split("?");
  if (!session.token()) {
    if (path && path !== "/login") sessionStorage.setItem("shoal.after-login", `#${path}${search ? `?${search}` : ""}`);
    window.shoalConsole.view = "login";
    loginView();
    return;
  }
  for (const [pattern, view, params] of ROUTES) {
    const match = pattern.exec(path || "");
    if (match) {
      window.shoalConsole.view = path;
      for (const link of document.querySelectorAll("nav a")) {
        link.toggleAttribute("aria-current", path.startsWith(link.dataset.prefix));
      }
      stop = view.mount(main, params(match), new URLSearchParams(search || ""));
      main.focus({ preventScroll: true });
      return;
    }
  }
  location.replace("#/nodes");
}

function currentNamespace() {
  const match = /^#\/ns\/([^/]+)/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : "default";
}

document.getElementById("apply").addEventListener("click", () => apply(currentNamespace()));
document.getElementById("logout").addEventListener("click", () => { session.logout(); loginMessage = ""; route(); });
document.getElementById("nav-workloads").addEventListener("click", (event) => {
  event.preventDefault();
  location.hash = `#/ns/${encodeURIComponent(currentNamespace())}/workloads`;
});
window.addEventListener("hashchange", route);
route();

// The Kubernetes API through the gateway, same origin: every request carries the bearer token kept in
// sessionStorage; a 401 sends the user back to the login form with the API's message.

const KEY = "shoal.token";

export const session = {
  token: () => sessionStorage.getItem(KEY),
  login: (token) => sessionStorage.setItem(KEY, token),
  logout: () => sessionStorage.removeItem(KEY),
};

export class Unauthorized extends Error {}

// An API error: `message` is the API's Status message, as the server worded it.
export class ApiError extends Error {
  constructor(code, status) {
    super(status.message || `HTTP ${code}`);
    this.code = code;
    this.reason = status.reason || "";
  }
}

let unauthorized = () => {};
export function onUnauthorized(handler) { unauthorized = handler; }

async function statusOf(response) {
  try {
    const body = await response.json();
    return { message: body.message || `${response.status} ${response.statusText}`, reason: body.reason };
  } catch {
    return { message: `${response.status} ${response.statusText}` };
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A GET that failed in the network (fetch's TypeError: the browser aborts requests in flight when the
// machine's network changes, ERR_NETWORK_CHANGED) is sent again, up to GET_ATTEMPTS times; writes are not.
const GET_ATTEMPTS = 4;

async function send(path, options) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(path, options);
    } catch (e) {
      if (options.method !== "GET" || !(e instanceof TypeError) || options.signal?.aborted || attempt >= GET_ATTEMPTS) throw e;
      await sleep(250 * attempt);
    }
  }
}

export async function request(path, { method = "GET", body, contentType, signal, accept = "application/json" } = {}) {
  const headers = { Authorization: `Bearer ${session.token() || ""}`, Accept: accept };
  if (body !== undefined) headers["Content-Type"] = contentType || "application/json";
  const payload = body === undefined || typeof body === "string" ? body : JSON.stringify(body);
  const response = await send(path, { method, headers, body: payload, signal, cache: "no-store" });
  if (response.status === 401) {
    const status = await statusOf(response);
    unauthorized(status.message);
    throw new Unauthorized(status.message);
  }
  if (!response.ok) throw new ApiError(response.status, await statusOf(response));
  return response;
}

export async function getJSON(path, options) {
  return (await request(path, options)).json();
}

// The lines of a streaming response body, as they arrive.
export async function* lines(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
    }
  }
  if (buffer) yield buffer;
}

// A watch's stream over a websocket, not a fetch: a browser keeps at most six HTTP/1.1 connections to the
// gateway and a streamed fetch holds one for the watch's whole life, so the workloads view (eight watches)
// would leave its seventh and eighth watch, and every action after them, waiting forever. Websockets do not
// count against that limit. A browser cannot set headers on one: the token goes as the Kubernetes API server
// takes it, the subprotocol base64url.bearer.authorization.k8s.io.<token>; the gateway selects the other one.
export const WATCH_PROTOCOL = "watch.shoal.v1";

// The upgrade was refused (a 401, 400, 410... a browser does not say which): list again, through fetch,
// which does say.
export class WatchRefused extends Error {}

function bearerProtocol(token) {
  const bytes = new TextEncoder().encode(token);
  const base64 = btoa(String.fromCharCode(...bytes));
  return `base64url.bearer.authorization.k8s.io.${base64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}`;
}

// The messages (one watch event each) of a watch at `path` (with its query), as they arrive; ends when the
// server closes the socket, or `signal` aborts.
export async function* watchMessages(path, signal) {
  const url = new URL(path, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url, [bearerProtocol(session.token() || ""), WATCH_PROTOCOL]);
  const queue = [];
  let opened = false;
  let closed = false;
  let wake = () => {};
  socket.onopen = () => { opened = true; };
  socket.onmessage = (message) => { queue.push(message.data); wake(); };
  socket.onclose = () => { closed = true; wake(); };
  const abort = () => { closed = true; socket.close(); wake(); };
  signal.addEventListener("abort", abort);
  try {
    for (;;) {
      if (queue.length) { yield queue.shift(); continue; }
      if (closed) break;
      await new Promise((resolve) => { wake = resolve; });
    }
  } finally {
    signal.removeEventListener("abort", abort);
    socket.close();
  }
  if (!opened && !signal.aborted) throw new WatchRefused(`the watch of ${url.pathname} was refused`);
}

// List then watch a collection, as client-go's reflector does: `list(items)` with the full state, then
// `event(type, object)` for each change (the watch over a websocket: `watchMessages`); the watch resumes from the last resourceVersion when the stream
// ends, and lists again when the server says that version is too old (410). With `pages` ({size, reset,
// add, done}) the list comes in pages of `size` (`limit`/`continue`), each handed over and dropped as it
// arrives, so a huge collection is never one body in memory. Returns a stop function.
async function listPages(path, params, pages, signal) {
  let token = "";
  let version = null;
  pages.reset();
  do {
    const query = new URLSearchParams({ ...params, limit: String(pages.size) });
    if (token) query.set("continue", token);
    const listed = await getJSON(`${path}?${query}`, { signal });
    version = listed.metadata.resourceVersion;
    token = listed.metadata.continue || "";
    pages.add(listed.items || []);
  } while (token);
  pages.done();
  return version;
}

export function informer(path, { list, event, pages, error = () => {} }, params = {}) {
  const controller = new AbortController();
  const signal = controller.signal;
  (async () => {
    let version = null;
    while (!signal.aborted) {
      try {
        if (version === null && pages) {
          version = await listPages(path, params, pages, signal);
        } else if (version === null) {
          const listed = await getJSON(`${path}?${new URLSearchParams(params)}`, { signal });
          version = listed.metadata.resourceVersion;
          list(listed.items || []);
        }
        const query = new URLSearchParams({ ...params, watch: "true", resourceVersion: version,
          allowWatchBookmarks: "true" });
        for await (const line of watchMessages(`${path}?${query}`, signal)) {
          if (!line.trim()) continue;
          const change = JSON.parse(line);
          if (change.type === "ERROR") {
            if (change.object.code === 410) { version = null; break; }
            throw new ApiError(change.object.code, change.object);
          }
          version = change.object.metadata.resourceVersion;
          if (change.type !== "BOOKMARK") event(change.type, change.object);
        }
      } catch (e) {
        if (signal.aborted || e instanceof Unauthorized) return;
        if (e instanceof WatchRefused) version = null;  // the list says why (a 401 logs out)
        else error(e);
        await sleep(1000);
      }
    }
  })();
  return () => controller.abort();
}

// The gateway's per-node sums of pods (`/console/v1/nodesummary`, `actors/gateway/nodesummary.py`): over a
// websocket, `snapshot(nodes, message)` first (node -> [pods, cpu millicores, memory bytes, notRunning]),
// then `changed(nodes, message)` with only the nodes whose totals changed (null: no pod left). A closed socket
// is opened again (a new snapshot). When the gateway refuses it, a GET says why: `refused(error)` for a 403
// (the user may not list every namespace's pods) or a 404 (a gateway without the summary), else it retries.
// Returns a stop function.
export const NODE_SUMMARY = "/console/v1/nodesummary";

export function watchNodeSums({ snapshot, changed, refused, error = () => {} }) {
  const controller = new AbortController();
  const signal = controller.signal;
  (async () => {
    while (!signal.aborted) {
      try {
        for await (const text of watchMessages(NODE_SUMMARY, signal)) {
          const message = JSON.parse(text);
          if (message.type === "SNAPSHOT") snapshot(message.nodes, message);
          else changed(message.nodes, message);
        }
      } catch (e) {
        if (signal.aborted) return;
        if (e instanceof WatchRefused) {
          try {
            await getJSON(NODE_SUMMARY, { signal });  // refused, then allowed: open it again
          } catch (why) {
            if (signal.aborted || why instanceof Unauthorized) return;
            if (why instanceof ApiError && (why.code === 403 || why.code === 404)) { refused(why); return; }
            error(why);
          }
        } else error(e);
      }
      await sleep(1000);
    }
  })();
  return () => controller.abort();
}

// Which resources the server serves, from discovery: "group/version/plural" -> resource (kind, namespaced).
let discovered = null;
export async function resources() {
  if (discovered) return discovered;
  const found = new Map();
  const add = (groupVersion, list) => {
    for (const r of list.resources || []) {
      if (!r.name.includes("/")) found.set(`${groupVersion}/${r.name}`, { ...r, groupVersion });
    }
  };
  add("v1", await getJSON("/api/v1"));
  const groups = await getJSON("/apis");
  await Promise.all((groups.groups || []).map(async (g) => {
    const version = g.preferredVersion.groupVersion;
    add(version, await getJSON(`/apis/${version}`));
  }));
  discovered = found;
  return found;
}

// The URL of a resource collection (namespaced or not) or of one object.
export function resourcePath(groupVersion, plural, namespace, name) {
  const base = groupVersion.includes("/") ? `/apis/${groupVersion}` : `/api/${groupVersion}`;
  const ns = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `${base}${ns}/${plural}${name ? `/${encodeURIComponent(name)}` : ""}`;
}

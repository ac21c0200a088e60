// Small DOM and formatting helpers shared by the views. No innerHTML: text is always set as text.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Replace an element's children in one go.
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

const SUFFIX = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

// A Kubernetes quantity ("100m", "1.5", "128Mi") as a number; 0 when absent or unreadable.
export function quantity(text) {
  if (text === undefined || text === null) return 0;
  const match = /^([0-9.]+(?:e[0-9]+)?)([a-zA-Z]*)$/.exec(String(text).trim());
  if (!match) return 0;
  const factor = match[2] ? SUFFIX[match[2]] : 1;
  return factor === undefined ? 0 : Number(match[1]) * factor;
}

export function bytes(n) {
  const units = ["B", "Ki", "Mi", "Gi", "Ti"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(n >= 10 || i === 0 ? 0 : 1)}${units[i]}`;
}

export function cores(n) {
  return n >= 1 ? `${n.toFixed(n >= 10 ? 0 : 1)}` : `${Math.round(n * 1000)}m`;
}

export function age(timestamp) {
  if (!timestamp) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(timestamp)) / 1000);
  if (seconds < 120) return `${Math.round(seconds)}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}

// Call fn at most once per animation frame, however often schedule() is called.
export function frameScheduler(fn) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; fn(); });
  };
}

// A progress bar: value of max, with a text label for screen readers and the eye.
export function bar(value, max, label) {
  const ratio = max > 0 ? Math.min(1, value / max) : 0;
  const fill = h("span", { class: "bar-fill" });
  fill.style.width = `${(ratio * 100).toFixed(1)}%`;
  const over = max > 0 && value > max;
  return h("span", { class: over ? "bar over" : "bar", role: "img", "aria-label": label, title: label },
    fill, h("span", { class: "bar-text", text: label }));
}

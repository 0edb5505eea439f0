// Small DOM and formatting helpers. Nothing here touches element.style (strict CSP).

export const $ = (sel, root = document) => root.querySelector(sel);

/** h("li", {class: "x", "data-sku": "a"}, child, "text") */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

const formatters = new Map();

export function money(cents, currency = "USD") {
  let f = formatters.get(currency);
  if (!f) {
    try {
      f = new Intl.NumberFormat("en-US", { style: "currency", currency });
    } catch {
      f = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
    }
    formatters.set(currency, f);
  }
  return f.format((Number(cents) || 0) / 100);
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** "about 10 minutes" / "30 seconds" for a wait in seconds. */
export function humanWait(seconds) {
  const s = Math.max(1, Math.ceil(Number(seconds) || 0));
  if (s < 90) return plural(s, "second", "seconds");
  const m = Math.ceil(s / 60);
  if (m < 90) return `about ${plural(m, "minute", "minutes")}`;
  return `about ${plural(Math.ceil(m / 60), "hour", "hours")}`;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Web storage that never throws (private mode, disabled storage, quota): falls back to memory. */
export function safeStorage(kind) {
  const memory = new Map();
  let store = null;
  try {
    store = window[kind];
    const probe = "__probe__";
    store.setItem(probe, probe);
    store.removeItem(probe);
  } catch {
    store = null;
  }
  return {
    persistent: store !== null,
    get(key) {
      try {
        return store ? store.getItem(key) : memory.get(key) ?? null;
      } catch {
        return memory.get(key) ?? null;
      }
    },
    set(key, value) {
      memory.set(key, value);
      try {
        if (store) store.setItem(key, value);
      } catch {
        /* quota or disabled: the in-memory copy still works for this page */
      }
    },
    remove(key) {
      memory.delete(key);
      try {
        if (store) store.removeItem(key);
      } catch {
        /* ignore */
      }
    },
  };
}

export function readJSON(storage, key) {
  const raw = storage.get(key);
  if (raw === null) return { raw, value: undefined };
  try {
    return { raw, value: JSON.parse(raw) };
  } catch {
    return { raw, value: undefined };
  }
}

// The cart: lines of {sku, qty} kept in localStorage under a versioned key.
//
// Stored shape (key "pressed.cart.v1"):  {"v": 1, "lines": [{"sku": "beet-it", "qty": 2}]}
// Anything else under that key (garbage, foreign JSON, another version) is dropped silently.
// The pre-versioning format (key "pressed.cart": [{sku, qty}] or {sku: qty}) is migrated once.
// Prices are never stored: totals are always computed from the current catalog.

import { plural, readJSON, safeStorage } from "./dom.js";

export const CART_KEY = "pressed.cart.v1";
export const LEGACY_CART_KEY = "pressed.cart";
export const MAX_LINES = 50;
export const DEFAULT_MAX_QTY = 50;
const SKU_RE = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** Clean any value into a list of unique {sku, qty} lines, or null if it isn't a list. */
export function sanitizeLines(input, maxQty = DEFAULT_MAX_QTY) {
  if (!Array.isArray(input)) return null;
  const merged = new Map();
  for (const line of input) {
    if (!line || typeof line !== "object") continue;
    const { sku } = line;
    let { qty } = line;
    if (typeof sku !== "string" || !SKU_RE.test(sku)) continue;
    if (typeof qty === "string" && /^\d{1,4}$/.test(qty)) qty = Number(qty);
    if (!Number.isInteger(qty) || qty < 1) continue;
    if (!merged.has(sku) && merged.size >= MAX_LINES) continue;
    merged.set(sku, Math.min(maxQty, (merged.get(sku) || 0) + qty));
  }
  return [...merged].map(([sku, qty]) => ({ sku, qty }));
}

const sameLines = (a, b) => JSON.stringify(a) === JSON.stringify(b);

export class Cart extends EventTarget {
  constructor({ storage = safeStorage("localStorage"), maxQty = DEFAULT_MAX_QTY } = {}) {
    super();
    this.storage = storage;
    this.maxQty = maxQty;
    this.known = null; // Set of skus in the catalog, once it is loaded
    this._lines = this._load();
    window.addEventListener("storage", (e) => {
      if (e.key !== null && e.key !== CART_KEY && e.key !== LEGACY_CART_KEY) return;
      const next = this._load();
      this._restrict(next);
      if (!sameLines(next, this._lines)) {
        this._lines = next;
        this._emit("external");
      }
    });
  }

  get lines() {
    return this._lines.map((l) => ({ ...l }));
  }

  get count() {
    return this._lines.reduce((n, l) => n + l.qty, 0);
  }

  qty(sku) {
    return this._lines.find((l) => l.sku === sku)?.qty || 0;
  }

  add(sku, n = 1) {
    return this.setQty(sku, this.qty(sku) + n);
  }

  /** Set a line's quantity (clamped to 1..maxQty); 0 or less removes it. Returns the new qty. */
  setQty(sku, qty) {
    const q = Math.min(this.maxQty, Math.floor(Number(qty) || 0));
    const lines = this.lines.filter((l) => l.sku !== sku || q > 0);
    const line = lines.find((l) => l.sku === sku);
    if (line) line.qty = q;
    else if (q > 0) lines.push({ sku, qty: q });
    this._commit(lines);
    return Math.max(0, q);
  }

  remove(sku) {
    this._commit(this._lines.filter((l) => l.sku !== sku));
  }

  clear() {
    this._commit([]);
  }

  /** After an order: take the ordered quantities out (normally that empties the cart). */
  subtract(orderedLines) {
    const ordered = new Map(orderedLines.map((l) => [l.sku, l.qty]));
    const lines = this._lines
      .map((l) => ({ sku: l.sku, qty: l.qty - (ordered.get(l.sku) || 0) }))
      .filter((l) => l.qty > 0);
    this._commit(lines);
  }

  /** Forget lines whose product left the catalog. Returns the removed skus. */
  restrictTo(skus) {
    this.known = new Set(skus);
    const lines = this.lines;
    const removed = this._restrict(lines);
    if (removed.length) this._commit(lines);
    return removed;
  }

  _restrict(lines) {
    if (!this.known) return [];
    const removed = [];
    for (let i = lines.length - 1; i >= 0; i--) {
      if (!this.known.has(lines[i].sku)) removed.push(...lines.splice(i, 1).map((l) => l.sku));
    }
    return removed;
  }

  _commit(lines) {
    if (sameLines(lines, this._lines)) return;
    this._lines = lines;
    this._save();
    this._emit("local");
  }

  _save() {
    if (this._lines.length) this.storage.set(CART_KEY, JSON.stringify({ v: 1, lines: this._lines }));
    else this.storage.remove(CART_KEY);
  }

  _emit(source) {
    this.dispatchEvent(new CustomEvent("change", { detail: { source } }));
  }

  _load() {
    const current = readJSON(this.storage, CART_KEY);
    if (current.raw !== null) {
      const v = current.value;
      const lines = v && typeof v === "object" && v.v === 1 ? sanitizeLines(v.lines, this.maxQty) : null;
      if (lines) {
        const clean = JSON.stringify({ v: 1, lines });
        if (!lines.length) this.storage.remove(CART_KEY);
        else if (clean !== current.raw) this.storage.set(CART_KEY, clean);
        return lines;
      }
      this.storage.remove(CART_KEY); // corrupted, foreign or unknown version: start over
    }
    const legacy = readJSON(this.storage, LEGACY_CART_KEY);
    if (legacy.raw !== null) {
      this.storage.remove(LEGACY_CART_KEY);
      const v = legacy.value;
      let lines = null;
      if (Array.isArray(v)) lines = sanitizeLines(v, this.maxQty);
      else if (v && typeof v === "object") {
        lines = sanitizeLines(Object.entries(v).map(([sku, qty]) => ({ sku, qty })), this.maxQty);
      }
      if (lines && lines.length) {
        this.storage.set(CART_KEY, JSON.stringify({ v: 1, lines }));
        return lines;
      }
    }
    return [];
  }
}

/** Why the cart can't be ordered yet (count below min). */
export function minimumMessage(count, min) {
  if (count === 0) return `Your cart is empty. Add at least ${plural(min, "bottle", "bottles")} to order.`;
  return `Add ${plural(min - count, "more bottle", "more bottles")} to order: the minimum is ${min}.`;
}

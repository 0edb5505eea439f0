// The shop API (same origin, under config.apiBase) and the per-stage config.

// Cloud stages load Cloudflare's script; the local stage's config (served by the dev server)
// points at its offline stand-in, a same-origin path.
export const CLOUDFLARE_TURNSTILE = "https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit";
const DEFAULT_CONFIG = { stage: "local", apiBase: "/api", turnstileSitekey: "", turnstileScript: CLOUDFLARE_TURNSTILE };
let apiBase = DEFAULT_CONFIG.apiBase;

export class NetworkError extends Error {}

/** ./config.json is generated per stage; a missing or broken file falls back to defaults. */
export async function loadConfig() {
  const config = { ...DEFAULT_CONFIG };
  try {
    const res = await fetch("./config.json", { cache: "no-cache", headers: { Accept: "application/json" } });
    const data = res.ok ? await res.json() : null;
    if (data && typeof data === "object") {
      for (const k of Object.keys(DEFAULT_CONFIG)) if (typeof data[k] === "string") config[k] = data[k];
    }
  } catch {
    /* defaults */
  }
  // only same-origin paths: the CSP allows connect-src 'self' and nothing else
  apiBase = /^\/[\w\-/]*$/.test(config.apiBase) ? config.apiBase.replace(/\/+$/, "") : "/api";
  // the script is Cloudflare's or a same-origin path (script-src 'self' + Cloudflare only)
  if (config.turnstileScript !== CLOUDFLARE_TURNSTILE && !/^\/(?!\/)[\w\-/.]*(\?[\w=&-]*)?$/.test(config.turnstileScript)) {
    config.turnstileScript = CLOUDFLARE_TURNSTILE;
  }
  return config;
}

export const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;
const IMAGE_RE = /^[\w\-/]+\.(svg|png|jpe?g|webp)$/;

/** GET /catalog, keeping only well-formed products. Throws on failure. */
export async function getCatalog() {
  let res;
  try {
    res = await fetch(`${apiBase}/catalog`, { headers: { Accept: "application/json" } });
  } catch (e) {
    throw new NetworkError(String(e));
  }
  if (!res.ok) throw new Error(`catalog: HTTP ${res.status}`);
  const data = await res.json();
  const products = (Array.isArray(data?.products) ? data.products : []).filter(
    (p) =>
      p &&
      typeof p.sku === "string" &&
      typeof p.name === "string" &&
      Number.isInteger(p.price_cents) &&
      p.price_cents > 0,
  );
  if (!products.length) throw new Error("catalog: no products");
  const clean = products.map((p) => ({
    sku: p.sku,
    name: p.name,
    description: typeof p.description === "string" ? p.description : "",
    price_cents: p.price_cents,
    image: typeof p.image === "string" && IMAGE_RE.test(p.image) ? p.image : "",
  }));
  return {
    shop: cleanShop(data.shop),
    openNow: data.open_now !== false,
    opensAt: typeof data.opens_at === "string" ? data.opens_at : null,
    currency: typeof data.currency === "string" ? data.currency : "USD",
    minItems: Number.isInteger(data.min_items) && data.min_items > 0 ? data.min_items : 1,
    maxQty: Number.isInteger(data.max_line_qty) && data.max_line_qty > 0 ? data.max_line_qty : 50,
    products: clean,
    bySku: new Map(clean.map((p) => [p.sku, p])),
    // the choosable delivery days, earliest first: [{date: "YYYY-MM-DD", available}]
    deliveryDays: (Array.isArray(data.delivery_days) ? data.delivery_days : [])
      .filter((d) => d && typeof d.date === "string" && ISO_DAY.test(d.date))
      .map((d) => ({ date: d.date, available: d.available !== false })),
  };
}

const str = (v) => (typeof v === "string" ? v : "");
const cents = (v) => (Number.isInteger(v) && v >= 0 ? v : 0);

/** The shop profile from the catalog, every member with the right type (or null). */
function cleanShop(raw) {
  if (!raw || typeof raw !== "object" || !str(raw.name)) return null;
  const addr = raw.address && typeof raw.address === "object" ? raw.address : {};
  const area = raw.delivery_area && typeof raw.delivery_area === "object" ? raw.delivery_area : {};
  const days = raw.delivery && typeof raw.delivery === "object" ? raw.delivery : {};
  const list = (v) => (Array.isArray(v) ? v.filter((x) => typeof x === "string") : []);
  return {
    name: str(raw.name),
    email: str(raw.email),
    phone: str(raw.phone),
    address: { line1: str(addr.line1), line2: str(addr.line2), city: str(addr.city), state: str(addr.state), zip: str(addr.zip) },
    hours: str(raw.hours),
    timezone: str(raw.timezone),
    area: { states: list(area.states), zipPrefixes: list(area.zip_prefixes), description: str(area.description) },
    feeCents: cents(raw.delivery_fee_cents),
    freeFromCents: cents(raw.free_delivery_from_cents),
    payment: str(raw.payment),
    privacy: str(raw.privacy),
    terms: str(raw.terms),
    weekdays: list(days.weekdays),
  };
}

/**
 * POST /orders. Resolves with {status, ok, data, retryAfter} for any HTTP answer; rejects with
 * NetworkError when no complete answer arrived (offline, reset, timeout), in which case the
 * order may or may not exist: retry with the same Idempotency-Key.
 */
export async function postOrder(body, idempotencyKey, timeoutMs = 20000) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  let res;
  let text;
  try {
    res = await fetch(`${apiBase}/orders`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "Idempotency-Key": idempotencyKey,
      },
      body: JSON.stringify(body),
      cache: "no-store",
      credentials: "same-origin",
      signal: ctrl.signal,
    });
    text = await res.text();
  } catch (e) {
    throw new NetworkError(String(e));
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = JSON.parse(text);
  } catch {
    data = null;
  }
  const ra = Number.parseInt(res.headers.get("Retry-After") || "", 10);
  return { status: res.status, ok: res.ok, data, retryAfter: Number.isFinite(ra) && ra >= 0 ? ra : null };
}

/** A fresh Idempotency-Key (36 chars of [0-9a-f-]). */
export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

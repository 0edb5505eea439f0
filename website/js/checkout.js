// Checkout: the form, its draft, the order attempt (one Idempotency-Key per attempt), submit.
//
// sessionStorage "pressed.checkout.v1" = {v: 1, form: {...}, attempt: {key, fp, token, pending}}
//   fp is the exact request body minus the Turnstile token. Every retry of the same order
//   (double click, network failure, 503, reload mid-submit) sends the same Idempotency-Key, body
//   and token, so the server replays the first result instead of creating a second order. The
//   key is replaced only when the cart or the form changes, after a 409, or after success; the
//   token only when the server rejects it (bot_check_failed).
// sessionStorage "pressed.order.v1" = {v: 1, order, email}: the last confirmation (for reloads).

import { $, h, humanWait, money, readJSON, safeStorage, sleep } from "./dom.js";
import { minimumMessage } from "./cart.js";
import { ISO_DAY, NetworkError, newIdempotencyKey, postOrder } from "./api.js";
import { BotCheck } from "./turnstile.js";
import { deliveryFee, feeText, opensText, telHref } from "./shop.js";

export const CHECKOUT_KEY = "pressed.checkout.v1";
export const ORDER_KEY = "pressed.order.v1";

// API field path -> [form control name, input id, message when the value is missing]
const FIELDS = [
  ["name", "f-name", "Enter your full name."],
  ["email", "f-email", "Enter your email address, like name@example.com."],
  ["phone", "f-phone", "Enter a US phone number, like (212) 555-0143."],
  ["shipping.line1", "f-line1", "Enter the street address."],
  ["shipping.line2", "f-line2", ""],
  ["shipping.city", "f-city", "Enter the city."],
  ["shipping.state", "f-state", "Choose a state."],
  ["shipping.zip", "f-zip", "Enter a 5-digit ZIP code, like 10001."],
];
const FORM_NAMES = ["name", "email", "phone", "line1", "line2", "city", "state", "zip"];
const LABELS = {
  name: "Full name", email: "Email", phone: "Phone", "shipping.line1": "Street address",
  "shipping.line2": "Apartment", "shipping.city": "City", "shipping.state": "State", "shipping.zip": "ZIP code",
};
const NETWORK_RETRIES = 2;

export const US_STATES = [
  ["AL", "Alabama"], ["AK", "Alaska"], ["AZ", "Arizona"], ["AR", "Arkansas"], ["CA", "California"],
  ["CO", "Colorado"], ["CT", "Connecticut"], ["DE", "Delaware"], ["DC", "District of Columbia"],
  ["FL", "Florida"], ["GA", "Georgia"], ["HI", "Hawaii"], ["ID", "Idaho"], ["IL", "Illinois"],
  ["IN", "Indiana"], ["IA", "Iowa"], ["KS", "Kansas"], ["KY", "Kentucky"], ["LA", "Louisiana"],
  ["ME", "Maine"], ["MD", "Maryland"], ["MA", "Massachusetts"], ["MI", "Michigan"], ["MN", "Minnesota"],
  ["MS", "Mississippi"], ["MO", "Missouri"], ["MT", "Montana"], ["NE", "Nebraska"], ["NV", "Nevada"],
  ["NH", "New Hampshire"], ["NJ", "New Jersey"], ["NM", "New Mexico"], ["NY", "New York"],
  ["NC", "North Carolina"], ["ND", "North Dakota"], ["OH", "Ohio"], ["OK", "Oklahoma"], ["OR", "Oregon"],
  ["PA", "Pennsylvania"], ["PR", "Puerto Rico"], ["RI", "Rhode Island"], ["SC", "South Carolina"],
  ["SD", "South Dakota"], ["TN", "Tennessee"], ["TX", "Texas"], ["UT", "Utah"], ["VT", "Vermont"],
  ["VA", "Virginia"], ["WA", "Washington"], ["WV", "West Virginia"], ["WI", "Wisconsin"], ["WY", "Wyoming"],
];

/** "2026-12-03" -> "Thursday 3 December" (the shop's calendar day, whatever the browser's zone). */
export function humanDay(iso) {
  const [y, m, d] = String(iso).split("-").map(Number);
  const date = new Date(Date.UTC(y, m - 1, d));
  if (!ISO_DAY.test(iso) || date.getUTCDate() !== d) return String(iso);
  const part = (o) => date.toLocaleDateString("en-US", { timeZone: "UTC", ...o });
  return `${part({ weekday: "long" })} ${d} ${part({ month: "long" })}`;
}

/** Lenient client-side checks (the server has the final word). Returns {path: message}. */
export function validate(f) {
  const errors = {};
  for (const [path, , missing] of FIELDS) {
    const value = f[path.replace("shipping.", "")];
    if (missing && !value) errors[path] = missing;
  }
  if (f.email) {
    const at = f.email.split("@");
    if (/\s/.test(f.email)) errors.email = "An email address has no spaces. Please remove them.";
    else if (at.length !== 2) errors.email = "An email address has exactly one @, like name@example.com.";
    else if (!at[0]) errors.email = "Add the part before the @, like name@example.com.";
    else if (!/^[^.]+(\.[^.]+)+$/.test(at[1])) errors.email = `"${at[1] || "…"}" is not a complete domain: it needs a dot, like example.com.`;
  }
  const digits = f.phone.replace(/\D/g, "");
  if (f.phone && /[^\d\s().+-]/.test(f.phone)) {
    errors.phone = "A phone number has only digits, spaces and ( ) - +, like (212) 555-0143.";
  } else if (f.phone && !(digits.length === 10 || (digits.length === 11 && digits[0] === "1"))) {
    errors.phone = `A US phone number has 10 digits; this one has ${digits.length}. Like (212) 555-0143.`;
  }
  if (f.zip && !/^\d{5}(-\d{4})?$/.test(f.zip)) errors["shipping.zip"] = FIELDS[7][2];
  return errors;
}

export class Checkout {
  constructor({ cart, getCatalog, sitekey, scriptUrl, onSuccess }) {
    this.cart = cart;
    this.getCatalog = getCatalog;
    this.onSuccess = onSuccess;
    this.session = safeStorage("sessionStorage");
    this.form = $("#checkout-form");
    this.submitButton = $("#submit-order");
    this.status = $("#submit-status");
    this.alertBox = $("#form-alert");
    this.itemsError = $("#items-error");
    this.honeypot = $("#f-website");
    this.busy = false;
    this.bot = new BotCheck($("#bot-check-widget"), {
      sitekey,
      scriptUrl,
      onProblem: (kind) => this._botProblem(kind),
      onToken: () => this._showError("turnstile-error", ""),
    });

    const select = $("#f-state");
    for (const [code, name] of US_STATES) select.append(h("option", { value: code, text: name }));

    this.state = this._loadState();
    this._restoreForm();
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    const onEdit = (e) => {
      if (e.target === this.honeypot) return;
      if (e.target.getAttribute("aria-invalid") === "true") this._clearField(e.target);
      if (e.target.name === "delivery_day") this._showError("day-error", "");
      this.state.form = this.readForm();
      this._saveState();
    };
    this.form.addEventListener("input", onEdit);
    this.form.addEventListener("change", onEdit);
  }

  /** Called when the checkout view is shown. */
  enter() {
    this.renderSummary();
    this.renderShop();
    $("#resume-note").hidden = !this.state.attempt?.pending;
    this.bot.mount();
  }

  cartChanged() {
    this.renderSummary();
    this.renderShop();
  }

  /** Payment, privacy, delivery area and the closed state from the shop profile. */
  renderShop() {
    const catalog = this.getCatalog();
    const shop = catalog?.shop;
    if (shop) {
      $("#pay-note").textContent = `Payment: ${shop.payment}. Nothing is charged online.`;
      $("#f-email-privacy").textContent = shop.privacy;
      $("#summary-info").replaceChildren(
        h("p", {}, h("strong", {}, "We deliver in "), shop.area.description, shop.weekdays.length ? ` (${shop.weekdays.join(", ")}).` : "."),
        h("p", {}, h("strong", {}, "Delivery: "), feeText(shop, catalog.currency), "."),
        h("p", {}, "Questions? Call ", h("a", { href: telHref(shop.phone) }, shop.phone), " or email ", h("a", { href: `mailto:${shop.email}` }, shop.email), "."));
    }
    this.closed = Boolean(catalog && !catalog.openNow);
    const note = $("#closed-alert");
    note.hidden = !this.closed;
    note.textContent = this.closed
      ? `We're closed right now, so orders can't be placed. We open again ${opensText(catalog.opensAt, shop)}${shop ? ` (${shop.hours})` : ""}. Your cart and details stay here.`
      : "";
    if (!this.busy) this.submitButton.disabled = this.closed;
    if (catalog && !this.busy) this.renderDays(catalog.deliveryDays);
  }

  /** The chosen delivery day ("" if none). */
  chosenDay() {
    return this.form.querySelector("input[name=delivery_day]:checked")?.value || "";
  }

  /**
   * The delivery days as a radio group: full days shown, disabled, with "full"; the shopper's
   * day stays chosen while it has room, else the earliest day with room. Unchanged days leave
   * the group (and the shopper's focus) alone.
   */
  renderDays(days) {
    const key = JSON.stringify(days);
    if (key === this.daysKey) return;
    this.daysKey = key;
    const want = this.chosenDay() || this.state.form.day;
    const free = days.filter((d) => d.available);
    const pick = (free.find((d) => d.date === want) || free[0])?.date;
    $("#day-group").hidden = !days.length;
    $("#day-options").replaceChildren(
      ...days.map((d) => {
        const id = `day-${d.date}`;
        return h("div", { class: d.available ? "day" : "day full" },
          h("input", { type: "radio", name: "delivery_day", id, value: d.date, disabled: !d.available, checked: d.date === pick }),
          h("label", { for: id }, humanDay(d.date),
            d.available ? null : h("span", { class: "day-tag" }, h("span", { class: "visually-hidden" }, ", "), "full")));
      }),
    );
    this._showError("day-error", days.length && !free.length ? `Every delivery day we can offer is fully booked. ${this._orderAnyway()}` : "");
  }

  readForm() {
    const f = {};
    for (const name of FORM_NAMES) f[name] = (this.form.elements[name].value || "").trim();
    f.day = this.chosenDay();
    return f;
  }

  renderSummary() {
    const catalog = this.getCatalog();
    const list = $("#summary-lines");
    const lines = this.cart.lines;
    list.replaceChildren();
    if (!catalog) {
      list.append(h("li", { class: "muted" }, "Loading your order…"));
      return;
    }
    let total = 0;
    let count = 0;
    const fee = () => deliveryFee(catalog.shop, total);
    for (const line of lines) {
      const p = catalog.bySku.get(line.sku);
      if (!p) continue;
      total += p.price_cents * line.qty;
      count += line.qty;
      list.append(
        h("li", {},
          h("span", { class: "summary-name" }, `${line.qty} × ${p.name}`),
          h("span", { class: "num" }, money(p.price_cents * line.qty, catalog.currency))),
      );
    }
    if (!count) list.append(h("li", { class: "muted" }, "Your cart is empty."));
    $("#summary-subtotal").textContent = money(total, catalog.currency);
    $("#summary-fee").textContent = fee() ? money(fee(), catalog.currency) : "Free";
    $("#summary-total").textContent = money(total + fee(), catalog.currency);
    this._showItemsNote(count < catalog.minItems ? minimumMessage(count, catalog.minItems) : "");
  }

  async submit() {
    if (this.busy || this.closed) return;
    this._clearErrors();
    $("#resume-note").hidden = true;
    const catalog = this.getCatalog();
    if (!catalog) {
      this._alert("The menu is still loading. Please try again in a moment.");
      return;
    }
    const lines = this.cart.lines.filter((l) => catalog.bySku.has(l.sku));
    const count = lines.reduce((n, l) => n + l.qty, 0);
    if (count < catalog.minItems) {
      const msg = minimumMessage(count, catalog.minItems);
      this._showItemsNote(msg);
      this._alert(msg);
      return;
    }
    const f = this.readForm();
    const clientErrors = validate(f);
    if (Object.keys(clientErrors).length) {
      this._fieldErrors(clientErrors);
      return;
    }

    const body = {
      name: f.name,
      email: f.email,
      phone: f.phone,
      shipping: { line1: f.line1, line2: f.line2, city: f.city, state: f.state, zip: f.zip },
      items: lines.map((l) => ({ sku: l.sku, qty: l.qty })),
      website: this.honeypot.value,
    };
    if (f.day) body.delivery_day = f.day; // none offered: the server picks the earliest day with room
    const fp = JSON.stringify(body);
    let attempt = this.state.attempt;
    if (!attempt || attempt.fp !== fp) attempt = { key: newIdempotencyKey(), fp, token: null };
    attempt.pending = true;
    this.state.attempt = attempt;
    this._saveState();

    this._setBusy(true, "Running a quick security check…");
    let result = null;
    let failure = "";
    let renewedToken = false;
    for (let tries = 0; ; ) {
      // The attempt keeps its Turnstile token: a retry must repeat the very same request.
      const reused = Boolean(attempt.token);
      if (!attempt.token) {
        try {
          attempt.token = await this.bot.take();
        } catch (e) {
          failure = e?.message === "load" ? "bot-load" : "bot";
          break;
        }
        this._saveState();
      }
      this._setBusy(true, tries ? "Still trying to place your order…" : "Placing your order…");
      try {
        result = await postOrder({ ...body, turnstile_token: attempt.token }, attempt.key);
      } catch (e) {
        if (!(e instanceof NetworkError)) throw e;
        if (++tries > NETWORK_RETRIES) {
          failure = "network";
          break;
        }
        await sleep(1000 * tries); // the order may exist: same key, same body, same token
        continue;
      }
      if (result.data?.error?.code === "bot_check_failed") {
        attempt.token = null; // spent or expired
        this._saveState();
        if (reused && !renewedToken) {
          renewedToken = true; // an old token from an earlier try: get a new one, once
          continue;
        }
      }
      break;
    }

    if (result?.ok && result.data && typeof result.data.order_id === "string") {
      this._succeeded(result.data, body);
      return;
    }
    this._setBusy(false, "");
    if (result) {
      attempt.pending = false; // the server answered: no order is hanging for this key
      this._saveState();
      this._handleError(result);
    } else if (failure === "bot-load") {
      this._botProblem("load");
      this._alert(
        "The security check (Cloudflare Turnstile) didn't load, so we couldn't send your order. " +
          "A content blocker, a network filter or a lost connection can cause this: allow " +
          `challenges.cloudflare.com or try another network, then place your order again. ${this._orderAnyway()}`,
      );
    } else if (failure === "bot") {
      this._botProblem("unavailable");
      this._alert(`The security check didn't finish, so we couldn't send your order. Please place your order again. ${this._orderAnyway()}`);
    } else {
      this._alert(
        "We couldn't reach the shop. Check your connection and place your order again. " +
          "If your order already went through, it won't be placed twice.",
      );
    }
  }

  _succeeded(order, body) {
    const shop = this.getCatalog()?.shop || null;
    this.session.set(ORDER_KEY, JSON.stringify({ v: 1, order, email: body.email, phone: body.phone, shipping: body.shipping, name: body.name, shop }));
    this.state = { form: {}, attempt: null };
    this.session.remove(CHECKOUT_KEY);
    this.cart.subtract(body.items); // the cart is emptied only now
    this.bot.remove();
    this.form.reset();
    $("#resume-note").hidden = true;
    this._setBusy(false, "");
    this.onSuccess(order);
  }

  _handleError({ status, data, retryAfter }) {
    const err = (data && typeof data.error === "object" && data.error) || {};
    const code = err.code || (status >= 500 ? "service_unavailable" : "unknown");
    const fields = err.fields && typeof err.fields === "object" ? err.fields : {};
    const wait = Number.isFinite(err.retry_after) ? err.retry_after : retryAfter;
    switch (code) {
      case "validation_failed":
        this._fieldErrors(fields, true);
        break;
      case "email_undeliverable":
        this._fieldErrors(
          { email: fields.email || "We can't deliver email to this address. Please check it for typos." },
          true,
          "We can't send a receipt to that email address. Please check it.",
        );
        break;
      case "closed":
        this._alert(err.message || "The shop is closed right now. Please come back during opening hours.");
        break;
      case "rate_limited":
        this._alert(
          `You've tried to order several times in a short while. Please wait ${humanWait(wait || 60)}, then try again.`,
        );
        break;
      case "bot_check_failed":
        this.bot.refresh(); // turnstile.reset: the next try gets a new token
        this._alert("We couldn't confirm you're a person. Please complete the security check again, then place your order.");
        break;
      case "service_unavailable":
        this._alert(
          `We couldn't take your order just now. Please try again in ${humanWait(wait || 5)}. ` +
            "Your details are still here, and trying again won't place your order twice.",
        );
        break;
      case "delivery_day_unavailable":
        this._dayRefused(err, fields);
        break;
      case "idempotency_key_reused":
        this.state.attempt = null; // next submit starts a new attempt
        this._saveState();
        this._alert("Your order changed since your last try. Please check it, then place it again.");
        break;
      default:
        this._alert(
          status >= 500
            ? "Something went wrong on our side. Please try again; your order won't be placed twice."
            : err.message || "We couldn't place your order. Please check the form and try again.",
        );
    }
  }

  /**
   * 422 delivery_day_unavailable: the group now offers the server's `next_available` days (the
   * refused day stays in it, disabled, if it is full), the first is chosen, the shopper resubmits.
   */
  _dayRefused(err, fields) {
    const sent = this.state.attempt ? JSON.parse(this.state.attempt.fp).delivery_day : undefined;
    const next = (Array.isArray(err.next_available) ? err.next_available : []).filter(
      (d) => typeof d === "string" && ISO_DAY.test(d));
    const catalog = this.getCatalog();
    // no day has room: the days stay on show, all of them full
    const days = next.length
      ? next.map((date) => ({ date, available: true }))
      : (catalog?.deliveryDays || []).map((d) => ({ date: d.date, available: false }));
    if (err.reason === "full" && typeof sent === "string" && ISO_DAY.test(sent) && !days.some((d) => d.date === sent)) {
      days.push({ date: sent, available: false });
    }
    days.sort((a, b) => (a.date < b.date ? -1 : 1));
    if (catalog) catalog.deliveryDays = days; // until the page loads the catalog again
    this.state.form.day = "";
    for (const input of this.form.querySelectorAll("input[name=delivery_day]")) input.checked = false;
    this.daysKey = null;
    this.renderDays(days);
    this.state.form = this.readForm();
    this._saveState();
    const why = String(fields.delivery_day || "That delivery day can't be chosen.");
    const msg = next.length
      ? `${why} We've chosen the next day with room, ${humanDay(next[0])}. Check it, then place your order again.`
      : `Every delivery day we can offer is fully booked, so we can't take your order online. ${this._orderAnyway()}`;
    this._showError("day-error", msg);
    this._alert(msg, !next.length);
    if (next.length) this.form.querySelector("input[name=delivery_day]:checked")?.focus();
  }

  /** Show {path: message} next to the fields, announce them, focus the first one. */
  _fieldErrors(errors, fromServer = false, lead = "") {
    const general = [];
    const itemMsgs = [];
    let first;
    const body = this.state.attempt ? JSON.parse(this.state.attempt.fp) : null;
    for (const [path, rawMsg] of Object.entries(errors)) {
      const msg = String(rawMsg);
      const field = FIELDS.find(([p]) => p === path);
      if (field) {
        const [, id, missing] = field;
        const el = document.getElementById(id);
        this._showError(`${id}-error`, fromServer && msg === "Required." && missing ? missing : msg);
        el.setAttribute("aria-invalid", "true");
        continue;
      }
      const m = /^items(?:\[(\d+)\])?/.exec(path);
      if (m) {
        const sku = m[1] !== undefined ? body?.items?.[Number(m[1])]?.sku : null;
        const name = sku && this.getCatalog()?.bySku.get(sku)?.name;
        itemMsgs.push(name ? `${name}: ${msg}` : msg);
      } else if (path === "turnstile_token") {
        this._showError("turnstile-error", "Please complete the security check again.");
      } else {
        general.push(msg);
      }
    }
    first = FIELDS.map(([, id]) => document.getElementById(id)).find(
      (el) => el.getAttribute("aria-invalid") === "true",
    );
    if (itemMsgs.length) this._showItemsNote(itemMsgs.join(" "));
    const invalid = FIELDS.filter(([p]) => p in errors).map(([p]) => LABELS[p]);
    const parts = [];
    if (lead) parts.push(lead);
    else if (invalid.length) parts.push(`Please check ${invalid.length === 1 ? "this field" : "these fields"}: ${invalid.join(", ")}.`);
    if (itemMsgs.length) parts.push(...itemMsgs);
    parts.push(...general);
    this._alert(parts.join(" ") || "Please check the form.", !first);
    if (first) first.focus();
  }

  // #form-alert stays in the page (empty = invisible) so screen readers track it as a live region
  _alert(message, focus = true) {
    this.alertBox.textContent = message;
    if (focus) this.alertBox.focus();
  }

  _showError(id, message) {
    const p = document.getElementById(id);
    if (!p) return;
    p.textContent = message;
    p.hidden = !message;
  }

  _showItemsNote(message) {
    this.itemsError.textContent = message;
    this.itemsError.hidden = !message;
  }

  _clearField(el) {
    el.removeAttribute("aria-invalid");
    this._showError(`${el.id}-error`, "");
  }

  _clearErrors() {
    this.alertBox.textContent = "";
    for (const [, id] of FIELDS) this._clearField(document.getElementById(id));
    this._showError("turnstile-error", "");
    this._showError("day-error", "");
  }

  /** "You can also order by phone at … or by email at …" from the shop profile. */
  _orderAnyway() {
    const shop = this.getCatalog()?.shop;
    if (!shop) return "";
    return `You can also order by phone at ${shop.phone} or by email at ${shop.email}.`;
  }

  _botProblem(kind) {
    const msg = {
      load: "The security check couldn't load.",
      error: "The security check ran into a problem. It will try again by itself.",
      unavailable: "The security check didn't finish. Please try again.",
    }[kind];
    if (msg) this._showError("turnstile-error", msg);
  }

  _setBusy(busy, text) {
    const was = this.busy;
    this.busy = busy;
    this.submitButton.disabled = busy || Boolean(this.closed);
    this.submitButton.textContent = busy ? "Placing order…" : "Place order";
    this.form.setAttribute("aria-busy", String(busy));
    // read-only while in flight: what is sent is what the shopper sees
    for (const fs of this.form.querySelectorAll("fieldset")) fs.disabled = busy;
    this.status.textContent = text;
    if (busy && !was) this.status.focus(); // focus stays on the live status, not <body>
  }

  _loadState() {
    const { value } = readJSON(this.session, CHECKOUT_KEY);
    const state = { form: {}, attempt: null };
    if (!value || value.v !== 1) return state;
    if (value.form && typeof value.form === "object") {
      for (const n of [...FORM_NAMES, "day"]) if (typeof value.form[n] === "string") state.form[n] = value.form[n];
    }
    const a = value.attempt;
    if (a && typeof a.key === "string" && /^[\w-]{8,64}$/.test(a.key) && typeof a.fp === "string") {
      state.attempt = {
        key: a.key,
        fp: a.fp,
        token: typeof a.token === "string" && a.token ? a.token : null,
        pending: a.pending === true,
      };
    }
    return state;
  }

  _saveState() {
    this.session.set(CHECKOUT_KEY, JSON.stringify({ v: 1, ...this.state }));
  }

  _restoreForm() {
    for (const n of FORM_NAMES) {
      const v = this.state.form[n];
      if (typeof v === "string") this.form.elements[n].value = v;
    }
  }
}

/** The last confirmed order in this tab, or null. */
export function lastOrder() {
  const { value } = readJSON(safeStorage("sessionStorage"), ORDER_KEY);
  if (!value || value.v !== 1 || !value.order || typeof value.order.order_id !== "string") return null;
  return value;
}

/** Fill the confirmation view from the last order; false if there is none. */
export function renderConfirmation() {
  const saved = lastOrder();
  if (!saved) return false;
  const { order, email } = saved;
  const currency = typeof order.currency === "string" ? order.currency : "USD";
  $("#confirm-id").textContent = order.order_id;
  $("#confirm-lines").replaceChildren(
    ...(Array.isArray(order.items) ? order.items : []).map((l) =>
      h("tr", {},
        h("th", { scope: "row" }, String(l.name ?? l.sku)),
        h("td", { class: "num" }, String(l.qty)),
        h("td", { class: "num" }, money(l.unit_price_cents, currency)),
        h("td", { class: "num" }, money(l.line_total_cents, currency)))),
  );
  const fee = Number.isInteger(order.delivery_fee_cents) ? order.delivery_fee_cents : 0;
  const subtotal = Number.isInteger(order.subtotal_cents) ? order.subtotal_cents : order.total_cents - fee;
  $("#confirm-subtotal").textContent = money(subtotal, currency);
  $("#confirm-fee").textContent = fee ? money(fee, currency) : "Free";
  $("#confirm-total").textContent = money(order.total_cents, currency);
  $("#confirm-email").textContent = email || "your email address";
  const a = saved.shipping && typeof saved.shipping === "object" ? saved.shipping : {};
  const lines = [saved.name, a.line1, a.line2, a.city && `${a.city}, ${a.state} ${a.zip}`].filter((x) => typeof x === "string" && x);
  $("#confirm-address").replaceChildren(...lines.flatMap((l, i) => (i ? [h("br"), l] : [l])));
  const day = typeof order.delivery_day === "string" && ISO_DAY.test(order.delivery_day) ? order.delivery_day : "";
  $("#confirm-day").textContent = day ? humanDay(day) : "";
  $("#confirm-day-note").hidden = !day;
  $("#confirm-phone").textContent = typeof saved.phone === "string" ? saved.phone : "";
  const shop = saved.shop && typeof saved.shop === "object" ? saved.shop : null;
  $("#confirm-payment").textContent = shop?.payment ? `${shop.payment}, when your juice arrives. Nothing was charged online.` : "You pay when your juice arrives.";
  $("#confirm-next").textContent =
    "We press your juice and bring it to the address above, chilled. " +
    (shop?.weekdays?.length ? `We deliver ${shop.weekdays.join(", ")}; we'll call if anything is unclear.` : "We'll call if anything is unclear.");
  $("#confirm-contact").replaceChildren(
    ...(shop?.phone
      ? ["Need to change something? Call ", h("a", { href: telHref(shop.phone) }, shop.phone), " or email ",
         h("a", { href: `mailto:${shop.email}` }, shop.email), ` and quote order ${order.order_id}.`]
      : [`Need to change something? Reply to the receipt email and quote order ${order.order_id}.`]),
  );
  return true;
}

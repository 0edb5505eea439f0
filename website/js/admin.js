// The back office page: sign-in by emailed link, orders, CSV export, email health, erasure.
// Same origin as the API; the session is an HttpOnly cookie (Path=/api/admin) the page never
// sees. Every state-changing request carries X-Requested-With: admin (the server's CSRF check).
// No inline script or style anywhere (the site's CSP).

import { $, h, money } from "./dom.js";

const API = "/api/admin";
const STATUS_TEXT = {
  accepted: "New",
  confirmed: "Confirmed",
  out_for_delivery: "Out for delivery",
  delivered: "Delivered",
  cancelled: "Cancelled",
};
const ACTION_TEXT = {
  confirm: "Confirm order",
  dispatch: "Mark as out for delivery",
  deliver: "Mark as delivered",
  cancel: "Cancel order…",
};

let cursor = null;
let query = {};
let current = null;

class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-Requested-With"] = "admin";
    headers["Content-Type"] = "application/json";
  }
  const res = await fetch(API + path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => null);
  if (res.status === 401 && path !== "/login") showSignIn();
  if (!res.ok) throw new ApiFailure(res.status, data);
  return data;
}

function say(text) {
  $("#status").textContent = text;
}

function fail(e) {
  say(e instanceof ApiFailure ? e.message : "The back office can't be reached. Try again.");
}

function when(epoch) {
  if (!epoch) return "";
  return new Date(epoch * 1000).toLocaleString("en-US", { dateStyle: "medium", timeStyle: "short" });
}

function localToday() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// --- sign in -------------------------------------------------------------------------------
function showSignIn() {
  $("#office").hidden = true;
  $("#who").hidden = true;
  $("#signin").hidden = false;
}

async function start() {
  try {
    const me = await api("/session");
    $("#who-name").textContent = `Signed in as ${me.who}`;
    $("#who").hidden = false;
    $("#signin").hidden = true;
    $("#office").hidden = false;
    $("#filter-day").value = localToday();
    $("#export-from").value = localToday();
    $("#export-to").value = localToday();
    await loadOrders({});
  } catch (e) {
    if (!(e instanceof ApiFailure && e.status === 401)) fail(e);
    showSignIn();
  }
}

$("#signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const email = $("#signin-email").value.trim();
  if (!email) return say("Enter your email address.");
  try {
    const r = await api("/login", { method: "POST", body: { email } });
    $("#signin-done").textContent = r.message;
    $("#signin-done").hidden = false;
    say("");
  } catch (e) {
    fail(e);
  }
});

$("#sign-out").addEventListener("click", async () => {
  try {
    await api("/logout", { method: "POST", body: {} });
  } catch {
    /* signed out anyway */
  }
  showSignIn();
});

// --- tabs ----------------------------------------------------------------------------------
for (const b of document.querySelectorAll("[data-tab]")) {
  b.addEventListener("click", () => {
    for (const other of document.querySelectorAll("[data-tab]")) {
      const on = other === b;
      other.setAttribute("aria-pressed", String(on));
      $(`#tab-${other.dataset.tab}`).hidden = !on;
    }
    if (b.dataset.tab === "health") loadHealth();
  });
}

// --- orders --------------------------------------------------------------------------------
function emailsText(emails) {
  return Object.entries(emails || {})
    .map(([role, status]) => `${role === "customer" ? "receipt" : role === "merchant" ? "alert" : role.replace("status_", "")}: ${status}`)
    .join(", ");
}

function row(o) {
  const open = h("button", { type: "button", class: "link", "data-order": o.order_id, text: o.order_id });
  open.addEventListener("click", () => showOrder(o.order_id));
  return h(
    "tr",
    {},
    h("td", {}, open),
    h("td", { text: when(o.created_at) }),
    h("td", { text: o.day }),
    h("td", { text: o.name ? `${o.name} · ${o.email}` : "(erased)" }),
    h("td", { text: money(o.total_cents, o.currency) }),
    h("td", { class: `st st-${o.status}`, text: STATUS_TEXT[o.status] || o.status }),
    h("td", { text: emailsText(o.emails) }),
  );
}

let listSeq = 0; // only the newest list request may render (answers can arrive out of order)

async function loadOrders(q, more = false) {
  query = q;
  const seq = ++listSeq;
  const params = new URLSearchParams(q);
  if (more && cursor) params.set("cursor", cursor);
  $("#orders").setAttribute("aria-busy", "true");
  try {
    const data = await api(`/orders?${params}`);
    if (seq !== listSeq) return; // a newer filter or search was asked for meanwhile
    $("#orders").setAttribute("aria-busy", "false");
    const body = $("#orders tbody");
    if (!more) body.replaceChildren();
    for (const o of data.orders) body.append(row(o));
    cursor = data.cursor;
    $("#more").hidden = !cursor;
    $("#orders-empty").hidden = body.children.length > 0;
    say(`${body.children.length} order(s) shown.`);
  } catch (e) {
    if (seq !== listSeq) return;
    $("#orders").setAttribute("aria-busy", "false");
    fail(e);
  }
}

$("#filter").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const status = $("#filter-status").value;
  loadOrders(status ? { status } : { day: $("#filter-day").value || localToday() });
});

$("#search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = $("#search-q").value.trim();
  if (q) loadOrders({ q });
});

$("#more").addEventListener("click", () => loadOrders(query, true));

function list(sel, items) {
  $(sel).replaceChildren(...items.map((t) => h("li", { text: t })));
}

function showOrder(id) {
  api(`/orders/${encodeURIComponent(id)}`).then(render, fail);
}

function render(o) {
  current = o;
  const c = o.customer || {};
  const s = o.shipping || {};
  $("#detail-title").textContent = `Order ${o.order_id} · ${STATUS_TEXT[o.status] || o.status}`;
  $("#d-customer").textContent = c.name ? `${c.name} · ${c.email} · ${c.phone}` : "(personal data erased)";
  $("#d-address").textContent = [s.line1, s.line2, s.city, s.state, s.zip].filter(Boolean).join(", ");
  $("#d-flags").textContent = (o.flags || []).join(", ") || "none";
  list("#d-items", (o.items || []).map((i) => `${i.qty} × ${i.name} (${money(i.unit_price_cents, o.currency)}) = ${money(i.line_total_cents, o.currency)}`));
  $("#d-totals").textContent = `Subtotal ${money(o.subtotal_cents, o.currency)} · delivery ${money(o.delivery_fee_cents, o.currency)} · total ${money(o.total_cents, o.currency)}`;
  list("#d-emails", Object.entries(o.emails || {}).map(([role, e]) => `${role}: ${e.status}${e.reason ? ` (${e.reason})` : ""}`));
  list("#d-history", (o.history || []).map((x) => `${when(x.at)}: ${STATUS_TEXT[x.status] || x.status}${x.by ? ` (${x.by})` : ""}${x.reason ? `: ${x.reason}` : ""}`));
  const actions = $("#d-actions");
  actions.replaceChildren();
  for (const a of o.next_actions || []) {
    const b = h("button", { type: "button", "data-action": a, class: a === "cancel" ? "danger" : "", text: ACTION_TEXT[a] || a });
    b.addEventListener("click", () => (a === "cancel" ? ($("#cancel-form").hidden = false) : act(a)));
    actions.append(b);
  }
  $("#cancel-form").hidden = true;
  $("#detail").hidden = false;
  $("#detail-title").setAttribute("tabindex", "-1");
  $("#detail-title").focus();
}

async function act(action, reason) {
  if (!current) return;
  try {
    const r = await api(`/orders/${current.order_id}/actions`, { method: "POST", body: reason ? { action, reason } : { action } });
    render(r.order);
    say(r.changed ? `Order ${r.order.order_id}: ${STATUS_TEXT[r.order.status]}.` : "Nothing changed: it was already done.");
    loadOrders(query);
  } catch (e) {
    fail(e);
  }
}

$("#cancel-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  act("cancel", $("#cancel-reason").value.trim());
});
$("#cancel-keep").addEventListener("click", () => ($("#cancel-form").hidden = true));

// --- CSV export (parts joined into one file: only the first has the BOM and header) ------
$("#export-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const from = $("#export-from").value;
  const to = $("#export-to").value;
  const parts = [];
  let next = "";
  say("Preparing the file…");
  try {
    do {
      const params = new URLSearchParams({ from, to });
      if (next) params.set("cursor", next);
      const res = await fetch(`${API}/orders.csv?${params}`, { credentials: "same-origin" });
      if (!res.ok) throw new ApiFailure(res.status, await res.json().catch(() => null));
      parts.push(await res.arrayBuffer());
      next = res.headers.get("X-Next-Cursor") || "";
    } while (next && parts.length < 200);
  } catch (e) {
    return fail(e);
  }
  const link = $("#export-link");
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob(parts, { type: "text/csv;charset=utf-8" }));
  link.download = `orders-${from}-${to}.csv`;
  link.hidden = false;
  link.click();
  say(`The export of ${from} to ${to} is ready.`);
});

// --- email health ----------------------------------------------------------------------------
function pct(x, digits) {
  return `${(x * 100).toFixed(digits)} %`;
}

async function loadHealth() {
  try {
    const data = await api("/email-health");
    $("#health tbody").replaceChildren(
      ...data.windows.map((w) =>
        h(
          "tr",
          {},
          h("td", { text: `Last ${w.days} days` }),
          h("td", { text: w.sent }),
          h("td", { text: w.delivered }),
          h("td", { text: w.bounced }),
          h("td", { text: w.complained }),
          h("td", { class: w.bounce_ok ? "ok" : "bad", text: pct(w.bounce_rate, 1) }),
          h("td", { class: w.complaint_ok ? "ok" : "bad", text: pct(w.complaint_rate, 2) }),
        ),
      ),
    );
    const body = $("#suppressed tbody");
    body.replaceChildren(...data.suppressed.map(suppressedRow));
    $("#suppressed-empty").hidden = data.suppressed.length > 0;
  } catch (e) {
    fail(e);
  }
}

function suppressedRow(s) {
  const cell = h("td");
  const remove = h("button", { type: "button", text: "Remove from suppression" });
  const yes = h("button", { type: "button", class: "danger", text: `Yes, email ${s.email} again` });
  const no = h("button", { type: "button", text: "Keep" });
  const confirmBox = h("span", { class: "confirm", hidden: true }, yes, no);
  remove.addEventListener("click", () => {
    remove.hidden = true;
    confirmBox.hidden = false;
  });
  no.addEventListener("click", () => {
    remove.hidden = false;
    confirmBox.hidden = true;
  });
  yes.addEventListener("click", async () => {
    try {
      await api("/suppression/remove", { method: "POST", body: { id: s.id } });
      say(`${s.email} was removed from the suppression list.`);
      loadHealth();
    } catch (e) {
      fail(e);
    }
  });
  cell.append(remove, confirmBox);
  return h("tr", {}, h("td", { text: s.email }), h("td", { text: s.reason }), h("td", { text: when(s.since) }), cell);
}

// --- erasure -------------------------------------------------------------------------------
$("#erase-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const email = $("#erase-email").value.trim();
  if (!email) return say("Enter the customer's email address.");
  if (!$("#erase-confirm").checked) return say("Tick the box to confirm the erasure.");
  try {
    const r = await api("/erase", { method: "POST", body: { email, confirm: true } });
    $("#erase-done").textContent = `Erased from ${r.orders} order(s).${r.suppression_hash_kept ? " The address stays blocked (kept as a hash only)." : ""}`;
    $("#erase-done").hidden = false;
    $("#erase-confirm").checked = false;
  } catch (e) {
    fail(e);
  }
});

start();

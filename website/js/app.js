// Entry point: config, catalog, routing (#shop, #cart, #checkout, #confirmation), shop + cart UI.

import { $, h, money, plural } from "./dom.js";
import { deliveryFee, feeText, opensText, telHref } from "./shop.js";
import { getCatalog, loadConfig } from "./api.js";
import { Cart, minimumMessage } from "./cart.js";

const TITLES = {
  shop: "Pressed & Co. · Cold-pressed juice",
  checkout: "Checkout · Pressed & Co.",
  confirmation: "Order confirmed · Pressed & Co.",
};

let catalog = null;
const cart = new Cart();
const config = await loadConfig();

// The checkout code (form, Turnstile) loads only when a shopper heads there.
let checkout = null;
let checkoutModule = null;
function loadCheckout() {
  checkoutModule ||= import("./checkout.js").then((m) => {
    checkout = new m.Checkout({
      cart,
      getCatalog: () => catalog,
      sitekey: config.turnstileSitekey,
      scriptUrl: config.turnstileScript,
      onSuccess: () => {
        // replace the #checkout entry: Back from the confirmation returns to the shop
        if (location.hash === "#confirmation") route(true);
        else {
          location.replace("#confirmation");
        }
      },
    });
    return m;
  });
  checkoutModule.catch(() => (checkoutModule = null));
  return checkoutModule;
}

// ---- routing ---------------------------------------------------------------------------------

let routeSeq = 0;

async function route(navigated) {
  const hash = location.hash.slice(1);
  let view;
  if (hash === "checkout" || hash === "confirmation") view = hash;
  else if (hash === "" || hash === "shop" || hash === "cart") view = "shop";
  else return; // an in-page anchor: stay on the current view
  const seq = ++routeSeq;
  if (view !== "shop") {
    let m;
    try {
      m = await loadCheckout();
    } catch {
      announce("We couldn't open the checkout. Check your connection and try again.");
      return;
    }
    if (seq !== routeSeq) return; // the shopper moved on meanwhile
    if (view === "confirmation" && !m.renderConfirmation()) {
      location.replace("#shop");
      return;
    }
  }
  for (const name of Object.keys(TITLES)) $(`#view-${name}`).hidden = name !== view;
  document.title = TITLES[view];
  if (view === "checkout") checkout.enter();
  if (!navigated) return;
  const target = { shop: hash === "cart" ? "#cart" : "#shop-title", checkout: "#checkout-title", confirmation: "#confirm-title" }[view];
  $(target).focus();
  if (view !== "shop" || hash !== "cart") window.scrollTo(0, 0);
}

window.addEventListener("hashchange", () => route(true));
$("#skip-link").addEventListener("click", (e) => {
  e.preventDefault();
  $("#main").focus();
});

// ---- catalog ---------------------------------------------------------------------------------

async function loadCatalog() {
  const status = $("#catalog-status");
  status.replaceChildren(h("p", {}, "Loading the menu…"));
  status.hidden = false;
  try {
    catalog = await getCatalog();
  } catch {
    const retry = h("button", { type: "button", class: "button" }, "Try again");
    retry.addEventListener("click", loadCatalog);
    status.replaceChildren(h("p", {}, "We couldn't load the menu. Check your connection and try again. "), retry);
    return;
  }
  status.hidden = true;
  status.replaceChildren();
  $("#products").removeAttribute("aria-busy");
  renderShopInfo();
  cart.maxQty = catalog.maxQty;
  for (const el of document.querySelectorAll(".min-count")) el.textContent = String(catalog.minItems);
  const removed = cart.restrictTo(catalog.products.map((p) => p.sku));
  const note = $("#cart-removed");
  note.hidden = !removed.length;
  note.textContent = removed.length
    ? `${plural(removed.length, "item is", "items are")} no longer on the menu and left your cart.`.replace(/^1 item/, "One item")
    : "";
  renderProducts();
  renderCart();
  checkout?.cartChanged();
}

/** The shop profile on the page: facts under the intro, the closed notice, the footer. */
function renderShopInfo() {
  const shop = catalog.shop;
  if (shop) {
    $("#fact-area").textContent = `${shop.area.description}${shop.weekdays.length ? `, ${shop.weekdays.join(", ")}` : ""}`;
    $("#fact-fee").textContent = feeText(shop, catalog.currency);
    $("#fact-payment").textContent = shop.payment;
    $("#fact-hours").textContent = shop.hours;
    $("#shop-facts").classList.remove("pending");
    const a = shop.address;
    $("#footer-address").textContent = [a.line1, a.line2, `${a.city}, ${a.state} ${a.zip}`].filter(Boolean).join(", ");
    $("#footer-contact").replaceChildren(
      h("a", { href: telHref(shop.phone) }, shop.phone), " · ", h("a", { href: `mailto:${shop.email}` }, shop.email));
    $("#footer-hours").textContent = `Open ${shop.hours}`;
    $("#footer-privacy").textContent = shop.privacy;
    $("#footer-terms").textContent = shop.terms;
  }
  $("#shop-facts").hidden = !shop;
  const closed = $("#closed-note");
  closed.hidden = catalog.openNow;
  closed.textContent = catalog.openNow ? "" : `We're closed right now and take orders again ${opensText(catalog.opensAt, shop)}. You can fill your cart in the meantime.`;
}

function renderProducts() {
  const list = $("#products");
  list.replaceChildren(
    ...catalog.products.map((p) => {
      const qtyId = `qty-${p.sku}`;
      const add = h("button", { type: "button", class: "button primary", "data-add": p.sku },
        h("span", {}, "Add", h("span", { class: "visually-hidden" }, ` ${p.name}`), " to cart"));
      return h("li", { class: "product", "data-sku": p.sku },
        p.image
          ? h("img", { src: p.image, alt: `Bottle of ${p.name} juice`, width: 160, height: 160, decoding: "async" })
          : h("div", { class: "img-placeholder" }),
        h("div", { class: "product-body" },
          h("h3", {}, p.name),
          h("p", { class: "desc" }, p.description),
          h("p", { class: "price" }, money(p.price_cents, catalog.currency))),
        h("div", { class: "add-row" },
          h("label", { for: qtyId, class: "qty-label" }, "Qty", h("span", { class: "visually-hidden" }, ` of ${p.name}`)),
          h("input", { id: qtyId, class: "qty-input", type: "number", min: 1, max: catalog.maxQty, value: 1, inputmode: "numeric", "aria-describedby": `${qtyId}-msg` }),
          add,
          h("p", { class: "qty-msg field-error", id: `${qtyId}-msg`, hidden: true }),
          h("span", { class: "in-cart small", "data-in-cart": "" })));
    }),
  );
  renderInCart();
}

$("#products").addEventListener("click", (e) => {
  const button = e.target.closest("[data-add]");
  if (!button || !catalog) return;
  const sku = button.getAttribute("data-add");
  const input = document.getElementById(`qty-${sku}`);
  const p = catalog.bySku.get(sku);
  const raw = Number(input.value);
  if (!Number.isInteger(raw) || raw < 1) {
    qtyMessage(sku, "Enter how many bottles, 1 or more.");
    announce(`Not added: enter how many bottles of ${p.name}, 1 or more.`);
    input.focus();
    return;
  }
  const before = cart.qty(sku);
  const after = cart.setQty(sku, before + raw);
  input.value = "1";
  const limited = before + raw > catalog.maxQty;
  qtyMessage(sku, limited ? `${catalog.maxQty} is the most per juice.` : "");
  let msg = after > before ? `Added ${after - before} × ${p.name}.` : `${p.name} is at the maximum of ${after}.`;
  if (limited) msg += ` ${catalog.maxQty} is the most per juice.`;
  msg += ` ${plural(cart.count, "bottle", "bottles")} in your cart.`;
  if (cart.count < catalog.minItems) msg += ` ${minimumMessage(cart.count, catalog.minItems)}`;
  announce(msg);
});

function qtyMessage(sku, text) {
  const el = document.querySelector(`.product[data-sku="${sku}"] .qty-msg`);
  if (el) {
    el.textContent = text;
    el.hidden = !text;
  }
}

function renderInCart() {
  for (const li of document.querySelectorAll(".product")) {
    const q = cart.qty(li.getAttribute("data-sku"));
    li.querySelector("[data-in-cart]").textContent = q ? `${q} in your cart` : "";
  }
}

// ---- cart ------------------------------------------------------------------------------------

function announce(text) {
  const live = $("#cart-live");
  live.textContent = "";
  // a fresh text node so repeated identical messages are announced again
  setTimeout(() => (live.textContent = text), 50);
}

function renderCart() {
  const count = cart.count;
  $("#cart-count").textContent = String(count);
  if (!catalog) return;
  const list = $("#cart-lines");
  const existing = new Map([...list.children].map((li) => [li.getAttribute("data-sku"), li]));
  const lines = cart.lines.filter((l) => catalog.bySku.has(l.sku));
  let total = 0;
  let focusLost = false;
  lines.forEach((line, i) => {
    const p = catalog.bySku.get(line.sku);
    total += p.price_cents * line.qty;
    let li = existing.get(line.sku);
    existing.delete(line.sku);
    if (!li) li = cartLine(p);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    const input = li.querySelector("input");
    if (document.activeElement !== input || Number(input.value) !== line.qty) input.value = String(line.qty);
    li.querySelector("[data-dec]").setAttribute("aria-disabled", String(line.qty <= 1));
    li.querySelector("[data-inc]").setAttribute("aria-disabled", String(line.qty >= catalog.maxQty));
    li.querySelector(".line-total").textContent = money(p.price_cents * line.qty, catalog.currency);
  });
  for (const li of existing.values()) {
    if (li.contains(document.activeElement)) focusLost = true;
    li.remove();
  }
  if (focusLost) $("#cart").focus();

  $("#cart-empty").hidden = lines.length > 0;
  $("#cart-totals").hidden = lines.length === 0;
  $("#cart-bottles").textContent = String(count);
  const fee = deliveryFee(catalog.shop, total);
  $("#cart-subtotal").textContent = money(total, catalog.currency);
  $("#cart-fee").textContent = fee ? money(fee, catalog.currency) : "Free";
  $("#cart-total").textContent = money(total + fee, catalog.currency);
  $("#bar-count").textContent = plural(count, "bottle", "bottles");
  $("#bar-total").textContent = money(total + fee, catalog.currency);
  $("#mobile-bar").hidden = lines.length === 0;
  $("#min-note").hidden = false;
  $("#to-checkout").hidden = false;
  const below = count < catalog.minItems;
  const note = $("#min-note");
  note.textContent = !count
    ? `Orders start at ${catalog.minItems} bottles. Mix and match any juices.`
    : below
      ? minimumMessage(count, catalog.minItems)
      : `Your order meets the ${catalog.minItems}-bottle minimum.`;
  note.classList.toggle("ok", !below);
  $("#to-checkout").setAttribute("aria-disabled", String(below));
}

function cartLine(p) {
  return h("li", { class: "line", "data-sku": p.sku },
    h("div", { class: "line-head" },
      h("span", { class: "line-name" }, p.name),
      h("span", { class: "line-total num" })),
    h("div", { class: "line-controls" },
      h("button", { type: "button", class: "step", "data-dec": "", "aria-label": `One less ${p.name}` }, "−"),
      h("input", { type: "number", class: "qty-input", min: 1, max: catalog.maxQty, inputmode: "numeric", "aria-label": `Quantity of ${p.name}` }),
      h("button", { type: "button", class: "step", "data-inc": "", "aria-label": `One more ${p.name}` }, "+"),
      h("span", { class: "muted small each" }, `${money(p.price_cents, catalog.currency)} each`),
      h("button", { type: "button", class: "link-button", "data-remove": "" }, "Remove", h("span", { class: "visually-hidden" }, ` ${p.name}`))));
}

$("#cart-lines").addEventListener("click", (e) => {
  const button = e.target.closest("button");
  const li = e.target.closest("li[data-sku]");
  if (!button || !li || button.getAttribute("aria-disabled") === "true") return;
  const sku = li.getAttribute("data-sku");
  const name = catalog.bySku.get(sku).name;
  if (button.hasAttribute("data-remove")) {
    cart.remove(sku);
    announce(`${name} removed. ${plural(cart.count, "bottle", "bottles")} in your cart.`);
  } else {
    const q = cart.setQty(sku, cart.qty(sku) + (button.hasAttribute("data-inc") ? 1 : -1));
    announce(`${q} × ${name}.`);
  }
});

$("#cart-lines").addEventListener("change", (e) => {
  const li = e.target.closest("li[data-sku]");
  if (!li || !e.target.matches("input")) return;
  const sku = li.getAttribute("data-sku");
  const q = Number(e.target.value);
  const name = catalog.bySku.get(sku).name;
  if (Number.isInteger(q) && q >= 1) {
    const set = cart.setQty(sku, q);
    if (q > set) announce(`${set} × ${name}: ${catalog.maxQty} is the most per juice.`);
  } else {
    e.target.value = String(cart.qty(sku)); // empty or invalid: keep what was there, and say so
    announce(`Quantity not changed: enter 1 or more bottles of ${name}, or remove it.`);
  }
});

// the phone bar: straight to checkout, or to the cart (and its minimum note) when below it
$("#bar-checkout").addEventListener("click", () => {
  if (!catalog) return;
  if (cart.count < catalog.minItems) {
    location.hash = "cart";
    announce(minimumMessage(cart.count, catalog.minItems));
    return;
  }
  location.hash = "checkout";
});

$("#to-checkout").addEventListener("click", () => {
  if (!catalog) return;
  if (cart.count < catalog.minItems) {
    announce(minimumMessage(cart.count, catalog.minItems));
    $("#min-note").classList.add("nudge");
    setTimeout(() => $("#min-note").classList.remove("nudge"), 700);
    return;
  }
  location.hash = "checkout";
});
for (const type of ["pointerenter", "focus"]) {
  $("#to-checkout").addEventListener(type, () => loadCheckout().catch(() => {}), { once: true });
}

cart.addEventListener("change", () => {
  renderCart();
  renderInCart();
  checkout?.cartChanged();
});

// ---- start -----------------------------------------------------------------------------------

renderCart();
route(false);
loadCatalog();

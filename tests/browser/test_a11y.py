"""Accessibility: keyboard-only checkout, visible focus, labels, contrast, the hidden honeypot."""

from __future__ import annotations

from tests.browser.constants import ADDRESS, NAME, PHONE, shopper_email
from tests.browser.flows import add, go_to_checkout, open_shop, orders_for, wait_turnstile

MAX_TABS = 80

ACTIVE = """() => { const e = document.activeElement;
  if (!e || e === document.body) return null;
  const cs = getComputedStyle(e);
  const text = e.tagName === "INPUT" || e.tagName === "SELECT" ? e.value : e.textContent;
  return { id: e.id, tag: e.tagName, text: (text || "").replace(/\\s+/g, " ").trim().slice(0, 60),
           name: e.getAttribute("aria-label") || "",
           outline: cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) >= 2 }; }"""


def tab_to(page, predicate, what: str) -> dict:
    """Press Tab until the focused element matches; every stop must show a focus ring."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        active = page.evaluate(ACTIVE)
        if active is None:
            continue
        assert active["outline"], f"no visible focus indicator on {active}"
        assert active["id"] != "f-website", "the honeypot took keyboard focus"
        if predicate(active):
            return active
    raise AssertionError(f"could not Tab to {what}")


def test_keyboard_only_checkout(shop, stack):
    page = open_shop(shop)
    email = shopper_email("keyboard")
    tab_to(page, lambda a: a["text"] == "Add Green Machine to cart", "the first Add button")
    page.keyboard.press("Enter")
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#cart-count').textContent === '3'")
    tab_to(page, lambda a: a["id"] == "to-checkout", "the checkout button")
    page.keyboard.press("Enter")
    page.locator("#view-checkout").wait_for(state="visible")
    assert page.evaluate("document.activeElement.id") == "checkout-title"

    answers = [
        ("f-name", NAME),
        ("f-email", email),
        ("f-phone", PHONE),
        ("f-line1", ADDRESS["line1"]),
        ("f-line2", ""),
        ("f-city", ADDRESS["city"]),
        ("f-state", "New York"),  # type-ahead in the focused select
        ("f-zip", ADDRESS["zip"]),
    ]
    for field_id, text in answers:
        tab_to(page, lambda a, f=field_id: a["id"] == f, field_id)
        if text:
            page.keyboard.type(text)
    assert page.input_value("#f-state") == "NY"
    wait_turnstile(page)
    tab_to(page, lambda a: a["id"] == "submit-order", "the submit button")
    page.keyboard.press("Enter")
    page.locator("#view-confirmation").wait_for(state="visible", timeout=15_000)
    assert page.evaluate("document.activeElement.id") == "confirm-title"
    order_id = page.inner_text("#confirm-id")
    assert [o["order_id"] for o in orders_for(stack, email)] == [order_id]
    shop.assert_clean()


def test_honeypot_is_hidden_from_people_keyboards_and_assistive_tech(shop):
    page = open_shop(shop)
    add(page, "beet-it", 3)
    go_to_checkout(page)
    hp = page.locator("#f-website")
    # present for bots: in the DOM, not display:none, named "website", but off-screen
    assert hp.count() == 1
    assert hp.get_attribute("name") == "website"
    assert hp.get_attribute("tabindex") == "-1"
    assert hp.get_attribute("autocomplete") == "off"
    assert page.evaluate("getComputedStyle(document.querySelector('#f-website')).display") != "none"
    box = hp.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 0, f"honeypot on screen at {box}"
    wrapper_hidden = page.evaluate(
        "document.querySelector('#f-website').closest('[aria-hidden=\"true\"]') !== null"
    )
    assert wrapper_hidden

    # never reached with the keyboard, forwards or backwards
    page.focus("#checkout-title")
    seen = []
    for key in ("Tab", "Shift+Tab"):
        page.focus("#checkout-title")
        for _ in range(40):
            page.keyboard.press(key)
            seen.append(page.evaluate("document.activeElement && document.activeElement.id"))
    assert "f-website" not in seen
    assert "f-name" in seen and "submit-order" in seen

    # not in the accessibility tree
    assert page.get_by_role("textbox", name="Website").count() == 0
    cdp = shop.context.new_cdp_session(page)
    doc = cdp.send("DOM.getDocument", {"depth": -1})
    node = cdp.send(
        "DOM.querySelector", {"nodeId": doc["root"]["nodeId"], "selector": "#f-website"}
    )
    backend = cdp.send("DOM.describeNode", {"nodeId": node["nodeId"]})["node"]["backendNodeId"]
    tree = cdp.send("Accessibility.getFullAXTree")["nodes"]
    exposed = [n for n in tree if n.get("backendDOMNodeId") == backend and not n.get("ignored")]
    assert not exposed, f"honeypot exposed to assistive technology: {exposed}"
    named = [
        n
        for n in tree
        if not n.get("ignored") and "website" in str(n.get("name", {}).get("value", "")).lower()
    ]
    assert not named, named
    shop.assert_clean()


UNNAMED_CONTROLS = """() => {
  const visible = e => e.offsetParent !== null || e.getClientRects().length > 0;
  const out = [];
  for (const e of document.querySelectorAll("input, select, textarea, button, a[href]")) {
    if (!visible(e) || e.closest("[aria-hidden=true]") || e.type === "hidden") continue;
    const labelled = (e.labels && [...e.labels].some(l => l.textContent.trim()))
      || (e.getAttribute("aria-label") || "").trim()
      || (e.getAttribute("aria-labelledby") || "").trim()
      || (["BUTTON", "A"].includes(e.tagName) && e.textContent.trim());
    if (!labelled) out.push(e.outerHTML.slice(0, 120));
  }
  return out;
}"""

LOW_CONTRAST = """() => {
  const parse = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
  const lum = ({ r, g, b }) => { const f = v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const bg = e => { for (; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c; } return { r: 255, g: 255, b: 255, a: 1 }; };
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const done = new Set();
  while (walker.nextNode()) {
    const e = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || done.has(e)) continue;
    done.add(e);
    if (!e.getClientRects().length || e.closest(".visually-hidden, .hp, [hidden]")) continue;
    const cs = getComputedStyle(e);
    if (cs.visibility === "hidden" || parseFloat(cs.opacity) === 0) continue;
    const fg = parse(cs.color), b = bg(e);
    const [hi, lo] = [lum(fg), lum(b)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const what = e.textContent.trim().slice(0, 40);
    if (ratio < need) bad.push(`${ratio.toFixed(2)} < ${need}: "${what}"`);
  }
  return bad;
}"""


def test_every_control_is_labelled_and_text_has_aa_contrast(shop):
    page = open_shop(shop)
    add(page, "beet-it", 1)  # the cart, its steppers and the minimum note are on screen
    assert page.evaluate(UNNAMED_CONTROLS) == []
    assert page.evaluate(LOW_CONTRAST) == []
    add(page, "beet-it", 2)
    go_to_checkout(page)
    wait_turnstile(page)
    page.fill("#f-zip", "nope")
    page.click("#submit-order")  # client-side errors: the error colours are on screen too
    page.locator("#form-alert").wait_for(state="visible")
    assert page.evaluate(UNNAMED_CONTROLS) == []
    assert page.evaluate(LOW_CONTRAST) == []
    assert page.get_attribute("#form-alert", "role") == "alert"
    assert page.get_attribute("#submit-status", "role") == "status"
    assert page.get_attribute("#cart-live", "role") == "status"
    shop.assert_clean()

// Local test check: a stand-in for https://challenges.cloudflare.com/turnstile/v0/api.js,
// served by the dev server (devstack/devserver.py) at /_dev/turnstile/v0/api.js so the shop
// works offline under `make run`. It is NOT a security check and is never deployed: the cloud
// stages' config.json has no turnstileScript, so the page loads Cloudflare's script there.
//
// Same API as Cloudflare's (explicit and implicit rendering): turnstile.render(container,
// params) -> widget id, reset, remove, getResponse, isExpired, execute, ready; params.callback,
// "error-callback", "expired-callback", "timeout-callback", "refresh-expired"; ?onload=<fn>.
// Tokens are the dummy token devstack/siteverify.py accepts with Cloudflare's test secrets.
// Sitekeys: the always-pass test sitekey (and any other) passes by itself; the always-fail one
// fails; the "force interactive" one (3x...FF) waits for a click on "Pass the check".
// Testing: each widget has a "Make this check fail" checkbox and an "Expire the token" button
// (both keyboard accessible). Tests may set window.__turnstileStandin = {expiryMs, delayMs}
// before the script loads (token lifetime, default 300 s like Cloudflare's; solve delay).
(function () {
  "use strict";
  var TOKEN = "__DUMMY_TOKEN__";
  var FAIL_SITEKEY = "__FAIL_SITEKEY__";
  var INTERACTIVE_SITEKEY = "3x00000000000000000000FF";
  var script = document.currentScript;
  var params = new URL(script ? script.src : location.href).searchParams;
  var opts = window.__turnstileStandin || {};
  var EXPIRY_MS = typeof opts.expiryMs === "number" ? opts.expiryMs : 300000;
  var DELAY_MS = typeof opts.delayMs === "number" ? opts.delayMs : 250;
  var widgets = {};
  var seq = 0;

  function call(fn, arg) {
    if (typeof fn === "string") fn = window[fn];
    if (typeof fn === "function") return fn(arg);
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  }

  function setState(w, state, text) {
    w.box.setAttribute("data-state", state);
    w.status.textContent = text;
  }

  function clearTimers(w) {
    clearTimeout(w.timer);
    clearTimeout(w.expiry);
  }

  function fail(w) {
    clearTimers(w);
    w.response = "";
    w.input.value = "";
    setState(w, "failed", "Failed (local test check set to fail).");
    call(w.params["error-callback"], "300030");
  }

  function pass(w) {
    clearTimers(w);
    w.response = TOKEN;
    w.input.value = TOKEN;
    w.expired = false;
    setState(w, "passed", "Passed. (Local test check: no real verification.)");
    w.expiry = setTimeout(function () {
      expire(w);
    }, EXPIRY_MS);
    call(w.params.callback, TOKEN);
  }

  function expire(w) {
    if (!widgets[w.id] || !w.response) return;
    clearTimers(w);
    w.response = "";
    w.input.value = "";
    w.expired = true;
    setState(w, "expired", "The check expired.");
    call(w.params["expired-callback"]);
    var refresh = w.params["refresh-expired"] || "auto";
    if (refresh === "auto") solve(w);
  }

  function solve(w) {
    clearTimers(w);
    w.response = "";
    w.input.value = "";
    w.passButton.hidden = true;
    if (w.failBox.checked || w.params.sitekey === FAIL_SITEKEY) {
      setState(w, "checking", "Checking…");
      w.timer = setTimeout(function () {
        if (widgets[w.id]) fail(w);
      }, DELAY_MS);
      return;
    }
    if (w.params.sitekey === INTERACTIVE_SITEKEY) {
      setState(w, "waiting", "Press “Pass the check” to continue.");
      w.passButton.hidden = false;
      return;
    }
    setState(w, "checking", "Checking…");
    w.timer = setTimeout(function () {
      if (widgets[w.id]) pass(w);
    }, DELAY_MS);
  }

  function find(ref) {
    if (ref === undefined || ref === null) return widgets[Object.keys(widgets)[0]];
    if (typeof ref === "string" && widgets[ref]) return widgets[ref];
    var node = typeof ref === "string" ? document.querySelector(ref) : ref;
    for (var id in widgets) if (widgets[id].container === node) return widgets[id];
    return undefined;
  }

  var api = {
    render: function (container, p) {
      var node = typeof container === "string" ? document.querySelector(container) : container;
      if (!node) throw new Error("[local test check] render: container not found");
      p = p || {};
      if (!p.sitekey) throw new Error("[local test check] render: sitekey required");
      var id = "ts-standin-" + ++seq;
      var box = el("div", { class: "ts-standin", role: "group", "aria-labelledby": id + "-title", "data-action": p.action || "" });
      var title = el("p", { class: "ts-standin-title", id: id + "-title" }, "Local test check");
      var note = el("p", { class: "ts-standin-note" }, "Stands in for Cloudflare Turnstile on this local test server. It does not check anything.");
      var status = el("p", { class: "ts-standin-status", role: "status" });
      var passButton = el("button", { type: "button", class: "ts-standin-pass" }, "Pass the check");
      passButton.hidden = true;
      var label = el("label", { class: "ts-standin-option" });
      var failBox = el("input", { type: "checkbox", class: "ts-standin-fail" });
      label.append(failBox, " Make this check fail (testing)");
      var expireButton = el("button", { type: "button", class: "ts-standin-expire" }, "Expire the token (testing)");
      var input = el("input", { type: "hidden", name: p["response-field-name"] || "cf-turnstile-response" });
      box.append(title, note, status, passButton, label, expireButton);
      node.append(box, input);
      var w = { id: id, container: node, box: box, status: status, input: input, params: p,
        failBox: failBox, passButton: passButton, response: "", expired: false };
      widgets[id] = w;
      failBox.addEventListener("change", function () {
        solve(w);
      });
      passButton.addEventListener("click", function () {
        pass(w);
        passButton.hidden = true;
      });
      expireButton.addEventListener("click", function () {
        expire(w);
      });
      solve(w);
      return id;
    },
    getResponse: function (ref) {
      var w = find(ref);
      return w ? w.response : undefined;
    },
    isExpired: function (ref) {
      var w = find(ref);
      return Boolean(w && w.expired);
    },
    reset: function (ref) {
      var w = find(ref);
      if (w) solve(w);
    },
    remove: function (ref) {
      var w = find(ref);
      if (!w) return;
      clearTimers(w);
      w.box.remove();
      w.input.remove();
      delete widgets[w.id];
    },
    execute: function (ref) {
      var w = find(ref);
      if (w) solve(w);
    },
    ready: function (fn) {
      setTimeout(fn, 0);
    },
    standin: true,
  };
  window.turnstile = api;

  if (params.get("render") !== "explicit") {
    var auto = function () {
      var els = document.querySelectorAll(".cf-turnstile");
      for (var i = 0; i < els.length; i++) {
        var d = els[i].dataset;
        api.render(els[i], {
          sitekey: d.sitekey,
          action: d.action,
          callback: d.callback,
          "error-callback": d.errorCallback,
          "expired-callback": d.expiredCallback,
        });
      }
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", auto);
    else auto();
  }
  var onload = params.get("onload");
  if (onload) setTimeout(function () { call(onload); }, 0);
})();

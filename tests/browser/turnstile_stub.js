// Stand-in for https://challenges.cloudflare.com/turnstile/v0/api.js in the browser tests.
// Implements window.turnstile.render/getResponse/reset/remove/ready/execute/isExpired; every
// widget "passes" shortly after render/reset and hands out the dummy token the local siteverify
// server accepts with the test secret. Honours ?render=explicit and ?onload=<global function>.
// Tests can tune it before the page loads: window.__turnstileStub = {token, delayMs, fail}.
// Counters for assertions: window.__turnstileStubStats = {renders, resets, removes}.
(function () {
  "use strict";
  var script = document.currentScript;
  var params = new URL(script ? script.src : location.href).searchParams;
  var explicit = params.get("render") === "explicit";
  var onload = params.get("onload");
  var opts = window.__turnstileStub || {};
  var TOKEN = opts.token || "XXXX.DUMMY.TOKEN.XXXX";
  var DELAY = typeof opts.delayMs === "number" ? opts.delayMs : 30;
  var stats = (window.__turnstileStubStats = { renders: 0, resets: 0, removes: 0 });
  var widgets = {};
  var seq = 0;

  function call(fn, arg) {
    if (typeof fn === "string") fn = window[fn];
    if (typeof fn === "function") return fn(arg);
  }

  function solve(w) {
    clearTimeout(w.timer);
    w.response = "";
    w.timer = setTimeout(function () {
      if (!widgets[w.id]) return;
      if (opts.fail) {
        w.box.textContent = "Security check failed (stub)";
        call(w.params["error-callback"], "300030");
        return;
      }
      w.response = TOKEN;
      w.input.value = TOKEN;
      w.box.textContent = "Success! (Turnstile test stub)";
      call(w.params.callback, TOKEN);
    }, DELAY);
  }

  function find(ref) {
    if (ref === undefined) return widgets[Object.keys(widgets)[0]];
    if (typeof ref === "string" && widgets[ref]) return widgets[ref];
    var el = typeof ref === "string" ? document.querySelector(ref) : ref;
    for (var id in widgets) if (widgets[id].container === el) return widgets[id];
    return undefined;
  }

  var api = {
    render: function (container, params) {
      var el = typeof container === "string" ? document.querySelector(container) : container;
      if (!el) throw new Error("[Turnstile stub] render: container not found");
      params = params || {};
      if (!params.sitekey) throw new Error("[Turnstile stub] render: sitekey required");
      var id = "cf-stub-" + ++seq;
      var box = document.createElement("div");
      box.className = "cf-turnstile-stub";
      box.setAttribute("data-action", params.action || "");
      box.textContent = "Verifying… (Turnstile test stub)";
      el.appendChild(box);
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = params["response-field-name"] || "cf-turnstile-response";
      el.appendChild(input);
      var w = { id: id, container: el, box: box, input: input, params: params, response: "" };
      widgets[id] = w;
      stats.renders++;
      solve(w);
      return id;
    },
    getResponse: function (ref) {
      var w = find(ref);
      return w ? w.response : undefined;
    },
    isExpired: function () {
      return false;
    },
    reset: function (ref) {
      var w = find(ref);
      if (!w) return;
      stats.resets++;
      w.box.textContent = "Verifying… (Turnstile test stub)";
      solve(w);
    },
    remove: function (ref) {
      var w = find(ref);
      if (!w) return;
      stats.removes++;
      clearTimeout(w.timer);
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
  };
  window.turnstile = api;

  if (!explicit) {
    // implicit mode: render every .cf-turnstile element from its data-* attributes
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
  if (onload) setTimeout(function () { call(onload); }, 0);
})();

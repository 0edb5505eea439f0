// Cloudflare Turnstile, rendered explicitly into one element.
//
// A token belongs to one checkout attempt: the server verifies it with siteverify's
// idempotency_key derived from the order's Idempotency-Key, so every retry of that attempt must
// send the same token (and the same body). take() hands out a token nobody has used yet; after
// that the widget is reset only when a new token is really needed (new attempt, rejected token).

// A script that neither loads nor fails (a filter that holds the request) counts as failed
// after this long, so the shopper hears about it well within 10 s of pressing the button.
export const LOAD_TIMEOUT_MS = 6000;
let loader = null;
// (window.turnstile alone could be an element with id="turnstile": check for the API itself)
const api = () => (typeof window.turnstile?.render === "function" ? window.turnstile : null);

function loadScript(url) {
  if (api()) return Promise.resolve(api());
  if (!loader) {
    loader = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      const fail = (why) => {
        clearTimeout(timer);
        loader = null;
        s.remove();
        reject(new Error(why));
      };
      const timer = setTimeout(() => fail("turnstile load timed out"), LOAD_TIMEOUT_MS);
      s.src = url;
      s.async = true;
      s.addEventListener("load", () => {
        clearTimeout(timer);
        if (api()) resolve(api());
        else fail("turnstile missing");
      });
      s.addEventListener("error", () => fail("turnstile did not load"));
      document.head.append(s);
    });
  }
  return loader;
}

export class BotCheckUnavailable extends Error {}

export class BotCheck {
  /** onProblem(kind) is called with "load", "error" or "expired"; onToken() when a token arrives. */
  constructor(el, { sitekey, scriptUrl, action = "order", onProblem = () => {}, onToken = () => {} }) {
    this.el = el;
    this.sitekey = sitekey;
    this.scriptUrl = scriptUrl;
    this.action = action;
    this.onProblem = onProblem;
    this.onToken = onToken;
    this.widget = null;
    this.token = null;
    this.used = false;
    this.waiters = [];
    this.mounting = null;
  }

  get enabled() {
    return Boolean(this.sitekey);
  }

  mount() {
    if (!this.enabled || this.widget !== null) return Promise.resolve();
    if (!this.mounting) {
      this.mounting = loadScript(this.scriptUrl)
        .then((ts) => {
          this.widget = ts.render(this.el, {
            sitekey: this.sitekey,
            action: this.action,
            callback: (token) => this._set(token),
            "error-callback": (code) => {
              this._set(null);
              this.onProblem("error", code);
              return true;
            },
            "expired-callback": () => {
              this._set(null);
              this.onProblem("expired");
            },
            "timeout-callback": () => this._set(null),
            "refresh-expired": "auto",
          });
        })
        .catch(() => {
          this.onProblem("load");
        })
        .finally(() => {
          this.mounting = null;
        });
    }
    return this.mounting;
  }

  _set(token) {
    this.token = token || null;
    this.used = false;
    if (this.token) {
      this.onToken();
      for (const w of this.waiters.splice(0)) w.resolve();
    }
  }

  /** Resolve with a token not used before (or "" when Turnstile is not configured). */
  async take(timeoutMs = 8000) {
    if (!this.enabled) return "";
    if (this.token && this.used) this.refresh();
    if (!this.token) {
      await this.mount();
      if (this.widget === null) throw new BotCheckUnavailable("load");
      if (!this.token) {
        await new Promise((resolve, reject) => {
          const w = { resolve: () => (clearTimeout(t), resolve()) };
          const t = setTimeout(() => {
            this.waiters = this.waiters.filter((x) => x !== w);
            reject(new BotCheckUnavailable("timeout"));
          }, timeoutMs);
          this.waiters.push(w);
        });
      }
    }
    this.used = true;
    return this.token;
  }

  /** Ask Turnstile for the next token (after a token was used or rejected). */
  refresh() {
    this.token = null;
    if (this.widget !== null && api()) {
      try {
        api().reset(this.widget);
      } catch {
        /* widget gone: mount again next time */
        this.widget = null;
      }
    }
  }

  remove() {
    if (this.widget !== null && api()) {
      try {
        api().remove(this.widget);
      } catch {
        /* ignore */
      }
    }
    this.widget = null;
    this.token = null;
  }
}

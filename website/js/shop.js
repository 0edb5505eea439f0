// The shop profile's rules and wording, shared by the shop view and the checkout.
import { money } from "./dom.js";

/** The delivery fee the server will charge for this subtotal (display only). */
export function deliveryFee(shop, subtotalCents) {
  if (!shop) return 0;
  if (shop.freeFromCents && subtotalCents >= shop.freeFromCents) return 0;
  return shop.feeCents;
}

export function feeText(shop, currency) {
  if (!shop.feeCents) return "Free";
  const fee = money(shop.feeCents, currency);
  return shop.freeFromCents ? `${fee}, free from ${money(shop.freeFromCents, currency)}` : fee;
}

export const telHref = (phone) => `tel:+1${phone.replace(/\D/g, "").replace(/^1(?=\d{10}$)/, "")}`;

/** "on Monday, December 7 at 8:00 AM" in the shop's timezone. */
export function opensText(iso, shop) {
  const when = iso ? new Date(iso) : null;
  if (!when || Number.isNaN(when.getTime())) return "during our opening hours";
  const opts = { weekday: "long", month: "long", day: "numeric", hour: "numeric", minute: "2-digit" };
  try {
    opts.timeZone = shop?.timezone || "America/New_York";
    return `on ${when.toLocaleString("en-US", opts)}`;
  } catch {
    delete opts.timeZone;
    return `on ${when.toLocaleString("en-US", opts)}`;
  }
}

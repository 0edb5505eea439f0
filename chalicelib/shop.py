"""The shop profile: who the shop is, where it delivers, what delivery costs, how shoppers pay.

One source of truth: `chalicelib/data/shop.json`. A stage can override any part of it with
`SHOP_PROFILE=<path to a JSON file>`: the file is merged over the default (objects key by key,
everything else replaced), then validated like the default. `GET /api/catalog` returns it as
`shop`; the page, both emails and the order validation read it from here.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.delivery import DeliveryRules

SHOP_FILE = Path(__file__).parent / "data" / "shop.json"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class ShopAddress:
    line1: str
    line2: str
    city: str
    state: str
    zip: str


@dataclass(frozen=True)
class DeliveryArea:
    states: tuple[str, ...]
    zip_prefixes: tuple[str, ...]
    description: str

    def covers(self, state: str, zip_code: str) -> bool:
        """True when the address (state + ZIP) is one the shop delivers to."""
        if self.states and state.upper() not in self.states:
            return False
        return not self.zip_prefixes or any(zip_code.startswith(p) for p in self.zip_prefixes)


@dataclass(frozen=True)
class DeliveryDays:
    weekdays: tuple[str, ...]
    horizon_days: int
    cutoff: str
    capacity_per_day: int


@dataclass(frozen=True)
class ShopProfile:
    name: str
    email: str
    phone: str
    address: ShopAddress
    timezone: str
    hours: str
    delivery_area: DeliveryArea
    delivery_fee_cents: int
    free_delivery_from_cents: int
    payment: str
    privacy: str
    terms: str
    delivery: DeliveryDays

    def delivery_fee(self, subtotal_cents: int) -> int:
        """The fee for an order of this subtotal: free from the threshold on."""
        if self.free_delivery_from_cents and subtotal_cents >= self.free_delivery_from_cents:
            return 0
        return self.delivery_fee_cents

    def delivery_rules(self) -> DeliveryRules:
        """The delivery-day rules (chalicelib/delivery.py) of this profile, parsed once (an
        order asks for them several times)."""
        return _rules(self.delivery, self.timezone)

    def as_response(self) -> dict[str, Any]:
        """The JSON shape of shop.json (tuples as lists)."""
        return json.loads(json.dumps(asdict(self)))


@lru_cache(maxsize=8)
def _rules(days: DeliveryDays, timezone: str) -> DeliveryRules:
    from chalicelib.delivery import DeliveryRules

    return DeliveryRules.parse(asdict(days), timezone)


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for k, v in over.items():
            merged[k] = _merge(base[k], v) if k in base else v
        return merged
    return over


def _str(data: dict[str, Any], key: str) -> str:
    v = data[key]
    if not isinstance(v, str):
        raise ValueError(f"shop profile: {key} must be a string")
    return v


def _cents(data: dict[str, Any], key: str) -> int:
    v = data[key]
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ValueError(f"shop profile: {key} must be a whole number of cents >= 0")
    return v


def parse_shop(data: dict[str, Any]) -> ShopProfile:
    """Build a ShopProfile, refusing malformed data (a typo must fail the deploy, not an order)."""
    addr = data["address"]
    area = data["delivery_area"]
    days = data["delivery"]
    states = tuple(str(s).upper() for s in area["states"])
    prefixes = tuple(str(p) for p in area["zip_prefixes"])
    if not all(p.isdigit() and 1 <= len(p) <= 5 for p in prefixes):
        raise ValueError("shop profile: zip_prefixes must be 1 to 5 digits each")
    weekdays = tuple(str(d) for d in days["weekdays"])
    if not set(weekdays) <= set(WEEKDAYS):
        raise ValueError(f"shop profile: delivery.weekdays must be among {WEEKDAYS}")
    return ShopProfile(
        name=_str(data, "name"),
        email=_str(data, "email"),
        phone=_str(data, "phone"),
        address=ShopAddress(*(_str(addr, k) for k in ("line1", "line2", "city", "state", "zip"))),
        timezone=_str(data, "timezone"),
        hours=_str(data, "hours"),
        delivery_area=DeliveryArea(states, prefixes, _str(area, "description")),
        delivery_fee_cents=_cents(data, "delivery_fee_cents"),
        free_delivery_from_cents=_cents(data, "free_delivery_from_cents"),
        payment=_str(data, "payment"),
        privacy=_str(data, "privacy"),
        terms=_str(data, "terms"),
        delivery=DeliveryDays(
            weekdays=weekdays,
            horizon_days=_cents(days, "horizon_days"),
            cutoff=_str(days, "cutoff"),
            capacity_per_day=_cents(days, "capacity_per_day"),
        ),
    )


@lru_cache(maxsize=4)
def _load(override: str) -> ShopProfile:
    data = json.loads(SHOP_FILE.read_text(encoding="utf-8"))
    if override:
        data = _merge(data, json.loads(Path(override).read_text(encoding="utf-8")))
    return parse_shop(data)


def load_shop() -> ShopProfile:
    """The shop profile (cached per override file): shop.json, merged with $SHOP_PROFILE."""
    return _load(os.environ.get("SHOP_PROFILE", "").strip())

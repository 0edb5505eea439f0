"""The product catalog: the single source of truth for products and prices."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

CATALOG_FILE = Path(__file__).parent / "data" / "catalog.json"


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    description: str
    price_cents: int
    image: str


@dataclass(frozen=True)
class Catalog:
    currency: str
    products: tuple[Product, ...]

    def get(self, sku: str) -> Product | None:
        return self._by_sku().get(sku)

    @lru_cache(maxsize=1)  # noqa: B019 - the catalog is a process-wide singleton
    def _by_sku(self) -> dict[str, Product]:
        return {p.sku: p for p in self.products}

    def as_response(self, min_items: int) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "min_items": min_items,
            "products": [
                {
                    "sku": p.sku,
                    "name": p.name,
                    "description": p.description,
                    "price_cents": p.price_cents,
                    "image": p.image,
                }
                for p in self.products
            ],
        }


def parse_catalog(data: dict[str, Any]) -> Catalog:
    """Build a Catalog, refusing malformed data (bad prices, duplicate skus)."""
    products = []
    seen: set[str] = set()
    for raw in data["products"]:
        price = raw["price_cents"]
        if not isinstance(price, int) or isinstance(price, bool) or price <= 0:
            raise ValueError(f"bad price for {raw.get('sku')!r}")
        if raw["sku"] in seen:
            raise ValueError(f"duplicate sku {raw['sku']!r}")
        seen.add(raw["sku"])
        products.append(Product(raw["sku"], raw["name"], raw["description"], price, raw["image"]))
    return Catalog(currency=data["currency"], products=tuple(products))


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The shop's catalog, read once per container."""
    return parse_catalog(json.loads(CATALOG_FILE.read_text(encoding="utf-8")))

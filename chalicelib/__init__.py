"""Order-fulfilment logic. One module per concern; AWS/DNS/HTTP adapters are created lazily."""

"""The Shopee Open Platform (API v2) adapter: everything orderflow knows about Shopee."""

"""Ingest: the webhook receiver, the poller (with lost-push drain and backfill) and the enricher."""

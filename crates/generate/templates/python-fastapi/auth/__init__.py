"""Cafe24 OAuth 2.0 for this app: install and callback routes, the exchange worker, the token
manager (encrypted at rest, refreshed ahead of expiry, one refresh per rotation across every
process), the Admin API client, and the optional admin proxy. docs: ../README.md."""

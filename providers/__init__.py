"""Async clients for the messaging providers chatops-bridge bridges.

Nothing in this package knows about Telegram or the database: an adapter takes an
``httpx.AsyncClient`` and its settings, speaks one vendor's HTTP API, and returns the typed
results of :mod:`providers.base` or raises the errors of :mod:`providers.errors`.
"""

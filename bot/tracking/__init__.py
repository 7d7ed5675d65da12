"""Delivery tracking: poll and receive delivery states, keep every status card current.

- :mod:`bot.tracking.policy`: backoff, expiry and the read-receipt watch; the injectable clock.
- :mod:`bot.tracking.schedule`: when each message is polled next (in memory; the database
  keeps only a restart hint written with each state change).
- :mod:`bot.tracking.poller`: polls providers, expires stuck messages, applies pushed receipts
  (no telegram import).
- :mod:`bot.tracking.limiter` and :mod:`bot.tracking.scheduler`: per-chat pacing and
  coalesced card jobs (no sleeping, no telegram).
- :mod:`bot.tracking.updater`: runs card jobs against Telegram (edits, failure mentions,
  details) and handles deleted cards and blocked chats.
- :mod:`bot.tracking.tracker`: the facade the application starts and stops; background loops
  in production, explicit :meth:`~bot.tracking.tracker.Tracker.tick` calls in tests.
"""

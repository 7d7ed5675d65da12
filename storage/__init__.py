"""Persistence for chatops-bridge: SQLModel tables, the async engine, migrations, encryption.

Nothing here knows about Telegram or provider HTTP; the services call :mod:`storage.repo`.
"""

"""The chatops-bridge Telegram bot: handlers, services, delivery tracking and scheduling."""

"""Outbound side effects: the outbox, connections (SMTP_EMAIL, WEBHOOK) and their senders."""

"""Outbound side effects: the outbox and (later) email/webhook senders."""

"""Personalize: flows (experiences and experiments), templates, conditions, traffic and results."""

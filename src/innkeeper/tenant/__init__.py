"""The deployment's tenant: client key, API tokens, settings, points of sale."""

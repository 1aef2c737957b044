"""Guest profiles, browsers, identifiers and identity resolution."""

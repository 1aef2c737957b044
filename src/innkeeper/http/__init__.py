"""HTTP glue: error mapping, Sitecore error envelopes, JSONP, CORS, Basic auth."""

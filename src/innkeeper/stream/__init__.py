"""The Sitecore Stream API: browser/create, browser/show, event ingestion."""

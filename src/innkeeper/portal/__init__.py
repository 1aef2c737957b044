"""The marketer portal: server-rendered pages under /portal (issue 7)."""

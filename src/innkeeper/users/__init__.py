"""Portal users: accounts, roles and their permissions, password sign-in with throttling, browser sessions."""

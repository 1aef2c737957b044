"""A small User-Agent reader for the session's ``device`` field."""

from __future__ import annotations


def parse_user_agent(ua: str | None) -> dict[str, str]:
    """Rough device type, OS and browser from a User-Agent header."""
    if not ua:
        return {}
    low = ua.lower()
    if "ipad" in low or "tablet" in low:
        kind = "tablet"
    elif "mobi" in low or "iphone" in low or "android" in low:
        kind = "mobile"
    elif "node" in low or "python" in low or "curl" in low or "bot" in low:
        kind = "other"
    else:
        kind = "desktop"
    os_name = "other"
    for needle, name in (
        ("windows", "Windows"),
        ("iphone", "iOS"),
        ("ipad", "iOS"),
        ("android", "Android"),
        ("mac os", "macOS"),
        ("cros", "ChromeOS"),
        ("linux", "Linux"),
    ):
        if needle in low:
            os_name = name
            break
    browser = "other"
    for needle, name in (
        ("edg/", "Edge"),
        ("opr/", "Opera"),
        ("firefox/", "Firefox"),
        ("chrome/", "Chrome"),
        ("safari/", "Safari"),
        ("curl/", "curl"),
        ("python", "Python"),
        ("node", "Node.js"),
    ):
        if needle in low:
            browser = name
            break
    return {"type": kind, "os": os_name, "browser": browser}

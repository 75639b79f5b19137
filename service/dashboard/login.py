"""The dashboard's sign-in form: the key goes in a POST body, never in a URL."""

from __future__ import annotations

from html import escape

from xsmoe.service.dashboard.page import STYLE


def login_page(hours: float, error: str | None = None) -> str:
    message = f'<p class="bad">{escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>xsmoe dashboard · sign in</title>
<style>{STYLE}</style></head>
<body><h1>xsmoe</h1>
<h2>Sign in to the dashboard</h2>{message}
<form method="post" action="/dashboard/login">
<label>API key (read, write or admin)
<input type="password" name="key" autocomplete="current-password" required autofocus></label>
<button type="submit">Sign in</button>
</form>
<p><small>The sign-in lasts {hours:g} hours, in this browser only.</small></p>
</body></html>"""

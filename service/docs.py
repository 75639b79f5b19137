"""/docs (Swagger UI) and /redoc served with their scripts from this app, so they
render offline: FastAPI's own pages load them from a CDN.

The assets come from the fastapi-offline wheel (Swagger UI 5, ReDoc 2, a favicon);
only its files are used, not its FastAPI subclass.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
ASSET_DIR = Path(fastapi_offline.__file__ or "").parent / "static"
# No validator badge (it would ask validator.swagger.io); the operation ids shown,
# as a generated client names its methods after them.
SWAGGER_PARAMETERS = {"validatorUrl": None, "displayOperationId": True}


def install(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Create `app` with docs_url=None and redoc_url=None, then call this."""
    app.mount(ASSETS, StaticFiles(directory=ASSET_DIR), name="docs-assets")
    title = app.title

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = base(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            oauth2_redirect_url=None,  # API keys only: no OAuth2 flow to come back from
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = base(request)
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )

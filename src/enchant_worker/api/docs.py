"""/docs (Swagger UI) and /redoc (ReDoc) without internet.

The pages and their scripts come from this server: `FastAPIOffline` (the fastapi-offline package ships
Swagger UI and ReDoc) serves them under DOCS_STATIC_URL instead of a CDN. The pages also carry a
Content-Security-Policy that lets them load nothing from elsewhere, so the one outside file the ReDoc
bundle still asks for (the Redocly logo in its sidebar) is never fetched.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_STATIC_URL = "/docs-static"
DOCS_PAGES = ("/docs", "/redoc")
# Swagger UI starts from an inline script and ReDoc builds its search worker from a blob.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'"
)
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}  # the validator badge would send the spec's address out


class DocsPolicy:
    """Adds the Content-Security-Policy to the /docs and /redoc pages."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in DOCS_PAGES:
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"content-security-policy", DOCS_CSP.encode())],
                }
            await send(message)

        await self.app(scope, receive, send_with_policy)

"""Small ASGI middleware of our own (pure ASGI: no per-request Request objects)."""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class VaryMiddleware:
    """Gives successful GET responses one clean `Vary: Accept, Accept-Encoding` (CORS adds Origin).

    Bodies differ by Accept (JSON or CSV) and by Accept-Encoding (gzip or not), whether or not
    this particular body was compressed; GZip and CORS each append their own token, which
    otherwise leaves duplicates.
    """

    REQUIRED = ("Accept", "Accept-Encoding")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                headers = MutableHeaders(scope=message)
                tokens = [t.strip() for v in headers.getlist("vary") for t in v.split(",")]
                merged = dict.fromkeys([*self.REQUIRED, *(t for t in tokens if t)])
                headers["Vary"] = ", ".join(merged)
            await send(message)

        await self.app(scope, receive, send_with_vary)

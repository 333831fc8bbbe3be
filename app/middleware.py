"""Small ASGI middleware of our own (pure ASGI: no per-request Request objects)."""

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLargeError, problem_response


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


class BodySizeLimitMiddleware:
    """413 (problem+json, through the app's handler) for bodies over the limit.

    A declared Content-Length over the limit is refused before the body is read; a chunked body
    is counted as it arrives. Imports have a larger limit of their own.
    """

    def __init__(self, app: ASGIApp, *, default_limit: int, limits: dict[str, int]) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default_limit)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = problem_response(
                413, detail=f"The body is over {limit} bytes.", slug="payload-too-large"
            )
            await response(scope, receive, send)
            return
        received = 0

        async def receive_with_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLargeError(f"The body is over {limit} bytes.")
            return message

        await self.app(scope, receive_with_limit, send)

"""The ceiling: a bare FastAPI app, one `async def` route returning a small dict.

`make bench` serves it on the same uvicorn as the app (same loop, HTTP parser, keep-alive and
connection limit) and reports every target as a share of it (issue 16): what our own stack
costs is measured against what the framework alone can do on this machine.
"""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def root() -> dict[str, str]:
    return {"status": "ok"}

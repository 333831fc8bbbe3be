"""The application: middleware, routers and error handlers, assembled in `create_app`."""

from fastapi import FastAPI

from app.errors import install_error_handlers
from app.routers import health

DESCRIPTION = """\
Statistics from the annual reviews of the Changzhou Municipal Bureau of Veterans Affairs
(常州市退役军人事务局), published as data: every figure traced to the sentence that states it.
"""


def create_app() -> FastAPI:
    app = FastAPI(
        title="Changzhou Veterans Affairs Statistics API",
        version="1.0.0",
        description=DESCRIPTION,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    return app


app = create_app()

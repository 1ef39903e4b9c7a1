"""The web chat console: static files served at `/` (no build step, nothing fetched from
elsewhere, so it works offline). It talks to the same /v1 API with the key the user types."""

from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"


def install(app: FastAPI) -> None:
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    # HEAD as well (RFC 9110; a link checker's or load balancer's probe): FileResponse sends
    # the headers alone for it.
    app.add_api_route("/", index, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

"""The web page and the files it loads: nothing in the API's schema, nothing behind the token."""

from importlib import resources

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from nlp.chat.attention_plot import packaged_cjk_font

STATIC = resources.files("nlp.serving.http") / "static"


def add_page_routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/fonts/cjk.otf", include_in_schema=False)
    async def cjk_font() -> FileResponse:
        """The heatmaps' Chinese font (Noto Sans CJK SC from mplfonts) for the page too, so
        Chinese is readable on machines without a CJK font; the stylesheet asks for it only
        when a CJK character is shown."""
        path = packaged_cjk_font()
        if path is None:
            raise HTTPException(404, "no packaged CJK font (pip install mplfonts)")
        return FileResponse(
            str(path), media_type="font/otf", headers={"Cache-Control": "max-age=86400"}
        )

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        """The page's icon, for the clients that ask for it here rather than read the page's
        `<link rel="icon">`."""
        return FileResponse(
            str(STATIC / "favicon.svg"), media_type="image/svg+xml",
            headers={"Cache-Control": "max-age=86400"},
        )

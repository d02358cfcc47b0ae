"""The agent console: one static page served by the prediction service.

``GET /console`` is the page; ``/console/console.js`` and ``/console/console.css`` its
script and style (vanilla JS, no build step, no third-party code). The page reads
``GET /console/api/predictions`` and posts ``/feedback`` with the agent's API key,
so it holds no data and needs no login of its own: the page is open, its data is not.
The files ship as package data (``serving/console/static``) and in the bento.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

#: The page talks only to the service that served it, and runs only its own script.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                           "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_FILES = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}

router = APIRouter(tags=["Agent console"])


@cache
def _static(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def _file(name: str) -> Response:
    return Response(_static(name), media_type=_FILES[name], headers={
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    })


@router.get("/console", response_class=Response, include_in_schema=True,
            summary="The agent console: recent predictions to review, corrected in one click")
def console_page() -> Response:
    return _file("index.html")


@router.get("/console/console.js", include_in_schema=False)
def console_script() -> Response:
    return _file("console.js")


@router.get("/console/console.css", include_in_schema=False)
def console_style() -> Response:
    return _file("console.css")

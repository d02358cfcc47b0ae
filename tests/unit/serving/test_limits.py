from __future__ import annotations

import warnings

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from serving.limits import RequestSizeLimit


async def echo_length(request: Request) -> JSONResponse:
    return JSONResponse({"length": len(await request.body())})


def _client(limit: int):
    app = Starlette(routes=[Route("/", echo_length, methods=["POST"])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # starlette's TestClient on httpx
        from starlette.testclient import TestClient

        return TestClient(RequestSizeLimit(app, max_bytes=limit))


def test_small_bodies_pass():
    assert _client(100).post("/", content=b"x" * 100).json() == {"length": 100}


def test_a_declared_oversized_body_is_refused_with_413():
    response = _client(100).post("/", content=b"x" * 101)
    assert response.status_code == 413 and "100 bytes" in response.json()["error"]


def test_a_streamed_oversized_body_is_refused_with_413():
    def chunks():
        for _ in range(10):
            yield b"x" * 50

    response = _client(100).post("/", content=chunks())
    assert response.status_code == 413

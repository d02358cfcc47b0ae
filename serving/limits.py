"""An ASGI guard that refuses oversized request bodies before anything parses them."""

from __future__ import annotations

import json


class RequestSizeLimit:
    """413 for a body over ``max_bytes``, whether announced by Content-Length or streamed.

    A streamed body that crosses the limit is cut off (the app sees a disconnect) and
    whatever the app answers is replaced by the 413, so the app never parses it.
    """

    def __init__(self, app, max_bytes: int | None = None):
        self.app = app
        if max_bytes is None:
            from serving.settings import ServingSettings

            max_bytes = ServingSettings().serving_max_request_bytes
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._refuse(send)
        received = 0
        refused = False

        async def counting_receive():
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        answered = False

        async def guarded_send(message):
            nonlocal answered
            if not refused:
                answered = True
                return await send(message)
            if message["type"] == "http.response.start" and not answered:
                answered = True
                await self._refuse(send)
            # the app's own answer to the cut-off body is dropped

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            # An app that does not catch the disconnect itself: answer for it.
            if not refused:
                raise
            if not answered:
                await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = json.dumps({"error": f"request body is larger than the limit of {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

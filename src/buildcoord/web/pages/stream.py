"""The dashboard's live stream: Server-Sent Events naming the panels that changed.

Each open page holds one stream. The process's change feed (services/feed.py) hands every new
event to the stream's callback on the feed's thread; the callback only notes which panels the
events touch, and the stream sends each changed panel's name once per look (htmx then asks for
that panel's fragment). A stream starts by naming every panel, so a page that reconnects after
a restart catches up on what it missed. It ends when the coordinator shuts down; the browser
reconnects by itself.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from buildcoord.errors import Unavailable
from buildcoord.models import Event
from buildcoord.services.coordinator import Coordinator
from buildcoord.web.pages.changes import STREAMED, panels_changed_by
from buildcoord.web.pages.render import SECURITY_HEADERS
from buildcoord.web.pages.session import ViewerDep

router = APIRouter(include_in_schema=False)

MAX_STREAMS = 1000
"""Open streams one coordinator process holds at most; more get 503 (and retry)."""

KEEPALIVE_SECONDS = 15.0
"""A comment line this often, so proxies keep an idle stream open."""

RETRY_MILLISECONDS = 1000
"""How soon the browser reconnects after a stream ends."""

_open = 0
_open_lock = threading.Lock()


def _frame(panel: str) -> str:
    return f"event: {panel}\ndata: {panel}\n\n"


@router.get("/ui/stream")
async def stream(request: Request, viewer: ViewerDep) -> Response:
    """Server-Sent Events: one event per changed panel, named after it."""
    if _open >= MAX_STREAMS:
        raise Unavailable(f"too many live pages ({MAX_STREAMS}); the page will retry")
    coordinator: Coordinator = request.app.state.coordinator
    shutting_down = request.app.state.shutting_down
    loop = asyncio.get_running_loop()
    changed: set[str] = set(STREAMED)
    wake = asyncio.Event()
    wake.set()

    def note(panels: set[str]) -> None:
        changed.update(panels)
        wake.set()

    def on_events(events: Sequence[Event]) -> None:
        panels = panels_changed_by(events)
        if panels:
            loop.call_soon_threadsafe(note, panels)

    async def frames() -> AsyncIterator[str]:
        # Subscribed only once the body is sent: a client gone before never subscribes, so
        # nothing is left behind.
        global _open
        with _open_lock:
            _open += 1
        unsubscribe = coordinator.feed.subscribe(on_events)
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n\n"
            idle = 0.0
            while not shutting_down():
                if wake.is_set():
                    wake.clear()
                    names = sorted(changed)
                    changed.clear()
                    idle = 0.0
                    yield "".join(_frame(name) for name in names)
                try:
                    await asyncio.wait_for(wake.wait(), timeout=1.0)
                except TimeoutError:
                    idle += 1.0
                    if idle >= KEEPALIVE_SECONDS:
                        idle = 0.0
                        yield ": keep-alive\n\n"
        finally:
            unsubscribe()
            with _open_lock:
                _open -= 1

    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)

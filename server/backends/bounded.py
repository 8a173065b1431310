"""Reading an upstream answer under a size limit: refused while it streams, never held past the limit."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


class AnswerTooLarge(Exception):
    """The answer passed the limit; ``why`` says how it was noticed (declared length, or bytes that arrived)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The (decoded) body of a streamed ``response``, or AnswerTooLarge as soon as it passes ``limit`` bytes: a
    runaway or hostile upstream cannot make the process hold more than that."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise AnswerTooLarge(f"it declares {int(declared):,} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge(f"more than {limit:,} bytes arrived")
        chunks.append(chunk)
    return b"".join(chunks)

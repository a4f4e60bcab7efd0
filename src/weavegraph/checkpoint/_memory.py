"""`InMemoryCheckpointer`: every checkpoint of every session, kept in this process."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from .._errors import CheckpointError
from .._resource import AsyncResource
from ._base import ANY_STEP, Checkpoint, _AnyStep, check_paging

__all__ = ["InMemoryCheckpointer", "select_history"]


class InMemoryCheckpointer(AsyncResource):
    """Keeps each session's full step history in memory (lost when the process ends)."""

    __slots__ = ("_sessions", "_steps")

    def __init__(self) -> None:
        self._sessions: dict[str, list[Checkpoint]] = {}
        self._steps: dict[str, list[int]] = {}

    async def setup(self) -> None:
        """Nothing to prepare."""

    async def aclose(self) -> None:
        """Nothing to release; the checkpoints stay readable."""

    async def save(
        self, checkpoint: Checkpoint, *, expected_step: int | _AnyStep | None = ANY_STEP
    ) -> None:
        """Store `checkpoint`; see `Checkpointer.save` for `expected_step`."""
        steps = self._steps.get(checkpoint.session_id)
        if expected_step is not ANY_STEP:
            latest = steps[-1] if steps else None
            if latest != expected_step:
                raise CheckpointError(
                    f"session {checkpoint.session_id!r}: expected latest step {expected_step}, "
                    f"found {latest}; another writer saved first"
                )
        if steps is None:
            self._steps[checkpoint.session_id] = [checkpoint.step]
            self._sessions[checkpoint.session_id] = [checkpoint]
            return
        items = self._sessions[checkpoint.session_id]
        if steps[-1] < checkpoint.step:  # the common case: the next step
            steps.append(checkpoint.step)
            items.append(checkpoint)
            return
        index = bisect.bisect_left(steps, checkpoint.step)
        if index < len(steps) and steps[index] == checkpoint.step:
            items[index] = checkpoint
        else:
            steps.insert(index, checkpoint.step)
            items.insert(index, checkpoint)

    async def load_latest(self, session_id: str) -> Checkpoint | None:
        """The checkpoint with the highest step, or None."""
        items = self._sessions.get(session_id)
        return items[-1] if items else None

    async def load(self, session_id: str, step: int) -> Checkpoint | None:
        """The checkpoint of `step`, or None."""
        steps = self._steps.get(session_id)
        if not steps:
            return None
        index = bisect.bisect_left(steps, step)
        if index < len(steps) and steps[index] == step:
            return self._sessions[session_id][index]
        return None

    async def history(
        self,
        session_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        from_step: int | None = None,
        to_step: int | None = None,
        ran_node: str | None = None,
        newest_first: bool = False,
    ) -> Sequence[Checkpoint]:
        """The session's checkpoints in step order, filtered, then paged."""
        return select_history(
            self._sessions.get(session_id, ()),
            limit=limit,
            offset=offset,
            from_step=from_step,
            to_step=to_step,
            ran_node=ran_node,
            newest_first=newest_first,
        )

    async def list_sessions(self) -> Sequence[str]:
        """Sessions with at least one checkpoint, sorted."""
        return sorted(self._sessions)

    async def delete_session(self, session_id: str) -> bool:
        """Forget a session; True if it had checkpoints."""
        self._steps.pop(session_id, None)
        return self._sessions.pop(session_id, None) is not None


def select_history(
    checkpoints: Sequence[Checkpoint],
    *,
    limit: int | None,
    offset: int,
    from_step: int | None,
    to_step: int | None,
    ran_node: str | None,
    newest_first: bool,
) -> list[Checkpoint]:
    """Filter step-ordered checkpoints by step range and ran node, then page them."""
    check_paging(limit, offset)
    chosen = [
        cp
        for cp in checkpoints
        if (from_step is None or cp.step >= from_step)
        and (to_step is None or cp.step <= to_step)
        and (ran_node is None or ran_node in cp.ran_nodes)
    ]
    if newest_first:
        chosen.reverse()
    end = None if limit is None else offset + limit
    return chosen[offset:end]

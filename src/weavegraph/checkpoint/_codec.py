"""Checkpoints as table rows, shared by the SQLite and PostgreSQL checkpointers.

A checkpoint row holds everything but the channel values, plus each channel's version; the
values live in their own table keyed (session, channel, version), written once per version.
Within a session a channel version names exactly one value: the runtime bumps a version
whenever a value changes, and a fork starts a new session.
"""

from __future__ import annotations

import json
import json.encoder
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from .._error_event import ErrorEvent
from .._errors import CheckpointError
from .._json import JSONValue, thaw
from .._message import Message
from .._state import VersionedState
from ._base import Checkpoint

__all__ = [
    "FINAL_STATUSES",
    "ChannelKey",
    "WrittenValues",
    "channel_json",
    "checkpoint_fields",
    "conflict",
    "dumps",
    "make_checkpoint",
    "needed_values",
]

ChannelKey = tuple[str, int]
"""A channel name and one of its versions."""

_Item = Message | ErrorEvent
_LIST_CHANNELS = ("messages", "errors")  # tuples of items that have to_dict()
_MAX_TEXTS = 512  # remembered list texts (two per live session); each is a whole value
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


# One encoder for every save: json.dumps(value, **options) would build a new one per call.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_quote = json.encoder.encode_basestring  # a str as a JSON string, non-ASCII kept (C code)


def dumps(value: JSONValue) -> str:
    """Compact JSON text, non-ASCII kept as it is."""
    return _encode(value)


def channel_json(state: VersionedState, channel: str) -> str:
    """The JSON text of one channel's value (encoding only that channel)."""
    if channel == "messages":
        return dumps([message.to_dict() for message in state.messages])
    if channel == "errors":
        return dumps([error.to_dict() for error in state.errors])
    if channel == "extra":
        return dumps(thaw(state.extra))
    return dumps(state.to_dict()[channel]["value"])  # a channel added later: encode it all


def checkpoint_fields(checkpoint: Checkpoint) -> tuple[str, str, str, str, str, str]:
    """The JSON columns of a checkpoint row: channel versions, frontier, joins, ran, skipped,
    updated channels."""
    joins = checkpoint.joins
    return (
        dumps(checkpoint.state.versions),
        _names(checkpoint.frontier),
        dumps({key: list(sources) for key, sources in joins.items()}) if joins else "{}",
        _names(checkpoint.ran_nodes),
        _names(checkpoint.skipped_nodes),
        _names(checkpoint.updated_channels),
    )


def status_text(checkpoint: Checkpoint) -> str:
    """The status column: the status, and for a paused run where it paused
    (``interrupted:before``), so that a restart releases the pause exactly once."""
    if checkpoint.paused is None:
        return checkpoint.status
    return f"{checkpoint.status}:{checkpoint.paused}"


def _names(names: tuple[str, ...]) -> str:
    # The same text as dumps(list(names)) at a fraction of the cost: a save encodes four of
    # these, and each JSONEncoder call has a fixed overhead larger than the work here.
    return f"[{','.join(map(_quote, names))}]"


def needed_values(versions: Iterable[Mapping[str, int]]) -> set[ChannelKey]:
    """Every (channel, version) that the given checkpoints' states refer to."""
    return {(channel, version) for each in versions for channel, version in each.items()}


def make_checkpoint(
    session_id: str,
    step: int,
    versions: Mapping[str, int],
    lists: Sequence[JSONValue],
    status: str,
    created_at: datetime,
    graph_hash: str,
    values: Mapping[ChannelKey, JSONValue],
) -> Checkpoint:
    """Rebuild a checkpoint from its row and the decoded channel values.

    Args:
        lists: the decoded frontier, joins, ran nodes, skipped nodes and updated channels.
        values: decoded channel values by (channel, version); must hold all of `versions`.

    Raises:
        CheckpointError: a channel value the row refers to is not stored.
    """
    frontier, joins, ran, skipped, updated = lists
    status, _, paused = status.partition(":")
    try:
        state = {name: {"version": v, "value": values[name, v]} for name, v in versions.items()}
    except KeyError as exc:
        raise CheckpointError(
            f"checkpoint of session {session_id!r} step {step} refers to channel value {exc} "
            "that is not stored; was the database edited by hand?"
        ) from None
    return Checkpoint(
        session_id=session_id,
        step=step,
        state=VersionedState.from_dict(state),
        frontier=tuple(frontier),
        joins={key: tuple(sources) for key, sources in joins.items()},
        ran_nodes=tuple(ran),
        skipped_nodes=tuple(skipped),
        updated_channels=tuple(updated),
        status=status,  # type: ignore[arg-type]  # written from a RunStatus
        paused=paused or None,  # type: ignore[arg-type]  # written by status_text
        created_at=created_at,
        graph_hash=graph_hash,
    )


def history_where(
    session_id: str,
    from_step: int | None,
    to_step: int | None,
    ran_node: str | None,
    *,
    mark: str,
    ran_test: str,
) -> tuple[str, list[object]]:
    """The WHERE clause and parameters of a history query, in either dialect.

    Args:
        mark: the dialect's parameter placeholder (``?`` or ``%s``).
        ran_test: the dialect's test that `ran_nodes` holds the parameter.
    """
    where = [f"session_id = {mark}"]
    params: list[object] = [session_id]
    for test, value in ((f"step >= {mark}", from_step), (f"step <= {mark}", to_step)):
        if value is not None:
            where.append(test)
            params.append(value)
    if ran_node is not None:
        where.append(ran_test)
        params.append(ran_node)
    return " AND ".join(where), params


def conflict(session_id: str, expected: int | None, found: int | None) -> CheckpointError:
    """The error of a save whose `expected_step` is not the session's latest step."""
    return CheckpointError(
        f"session {session_id!r}: expected latest step {expected}, found {found}; "
        "another writer saved first"
    )


class WrittenValues:
    """What this process wrote, so a save writes (and encodes) only what is new.

    Two memories, both bounded, least recently used forgotten first:

    - the (channel, version) pairs stored per session and session epoch (a session deleted
      and re-created elsewhere gets a new epoch, which voids it). A forgotten session's
      values are written again and ignored by the database (ON CONFLICT DO NOTHING);
    - the JSON text of the last `messages` and `errors` value encoded per session: these
      channels usually grow at the end, so the next version encodes only the new items.
      Dropped when a session reaches a final status.

    Not thread-safe: use it from one thread.
    """

    __slots__ = ("_max", "_sessions", "_texts")

    def __init__(self, max_sessions: int = 4096) -> None:
        self._max = max_sessions
        self._sessions: OrderedDict[str, tuple[int, set[ChannelKey]]] = OrderedDict()
        self._texts: OrderedDict[tuple[str, str], tuple[tuple[_Item, ...], str]] = OrderedDict()

    def epoch(self, session_id: str) -> int | None:
        """The epoch the remembered values of the session belong to, if any."""
        known = self._sessions.get(session_id)
        return None if known is None else known[0]

    def missing(
        self, session_id: str, epoch: int | None, versions: Mapping[str, int]
    ) -> list[ChannelKey]:
        """The (channel, version) pairs of `versions` not known to be stored."""
        known = self._sessions.get(session_id)
        if known is None or known[0] != epoch:
            return list(versions.items())
        written = known[1]
        return [key for key in versions.items() if key not in written]

    def encode(self, session_id: str, state: VersionedState, channel: str) -> str:
        """The JSON text of a channel's value, reusing the last text of a list that grew."""
        if channel not in _LIST_CHANNELS:
            return channel_json(state, channel)
        items: tuple[_Item, ...] = getattr(state, channel)
        key = (session_id, channel)
        last = self._texts.pop(key, None)
        if last is not None and 0 < len(last[0]) <= len(items) and items[: len(last[0])] == last[0]:
            old, text = last
            if len(items) > len(old):  # splice the new items into the old array
                text = f"{text[:-1]},{dumps([item.to_dict() for item in items[len(old) :]])[1:]}"
        else:
            text = dumps([item.to_dict() for item in items])
        self._texts[key] = (items, text)
        if len(self._texts) > _MAX_TEXTS:
            self._texts.popitem(last=False)
        return text

    def add(
        self, session_id: str, epoch: int, keys: Iterable[ChannelKey], *, final: bool = False
    ) -> None:
        """Remember `keys` as stored (call after the transaction committed); `final`: the
        session reached a final status, so its texts will not grow again."""
        known = self._sessions.pop(session_id, None)
        if known is None or known[0] != epoch:
            known = (epoch, set())
        known[1].update(keys)
        self._sessions[session_id] = known  # now the most recently used
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        if final:
            self._forget_texts(session_id)

    def forget(self, session_id: str) -> None:
        """Drop what is remembered of a session (it was deleted)."""
        self._sessions.pop(session_id, None)
        self._forget_texts(session_id)

    def _forget_texts(self, session_id: str) -> None:
        for channel in _LIST_CHANNELS:
            self._texts.pop((session_id, channel), None)

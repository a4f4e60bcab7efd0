"""Chat messages: the values of the `messages` channel."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from ._json import JSONValue

__all__ = ["Message", "Role"]


class Role(StrEnum):
    """The well-known message roles. Any other non-empty string is a custom role."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message.

    Args:
        role: "user", "assistant", "system", "tool" or any custom role name.
        content: the text of the message.
    """

    role: str
    content: str

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or not self.role:
            raise ValueError(f"message role must be a non-empty string; got {self.role!r}")
        if not isinstance(self.content, str):
            raise TypeError(f"message content must be a string; got {type(self.content).__name__}")

    @classmethod
    def user(cls, content: str) -> Message:
        """A message from the user."""
        return cls(Role.USER.value, content)

    @classmethod
    def assistant(cls, content: str) -> Message:
        """A message from the assistant."""
        return cls(Role.ASSISTANT.value, content)

    @classmethod
    def system(cls, content: str) -> Message:
        """A system instruction."""
        return cls(Role.SYSTEM.value, content)

    @classmethod
    def tool(cls, content: str) -> Message:
        """The output of a tool."""
        return cls(Role.TOOL.value, content)

    @classmethod
    def custom(cls, role: str, content: str) -> Message:
        """A message with a role of your own."""
        return cls(role, content)

    def has_role(self, role: str) -> bool:
        """True if this message's role is `role`."""
        return self.role == role

    def to_dict(self) -> dict[str, JSONValue]:
        """The message as a JSON object."""
        return {"role": self.role, "content": self.content}

    @classmethod
    def from_dict(cls, data: Mapping[str, JSONValue]) -> Message:
        """Build a message from `to_dict()` output; raises ValueError on a malformed object."""
        try:
            return cls(data["role"], data["content"])
        except (KeyError, TypeError) as exc:
            raise ValueError(
                f"not a message object (needs 'role' and 'content'): {data!r}"
            ) from exc

    def to_json(self) -> str:
        """The message as a JSON string."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Message:
        """Parse a message from `to_json()` output."""
        return cls.from_dict(json.loads(text))

"""Prompts from ``prompts/``: versioned text files turned into the opening messages.

The version recorded on each decision is the ``VERSION`` file plus a hash of every prompt
file, so an edit that forgot to bump VERSION still shows up as a different prompt.

Free text from outside (ticket bodies, reviews, any string in an event's properties, at any
depth) is lifted out of the triggering event and the context document and placed in fenced
blocks labelled as untrusted data, by the same fence the get_user_context tool uses
(``mca.untrusted``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from agent.errors import PromptError
from agent.model import Brief, Message
from mca.untrusted import Fence


@dataclass(frozen=True)
class PromptSet:
    version: str
    system: str
    tools: str
    goals: dict[str, str]

    @classmethod
    def load(cls, directory: Path) -> PromptSet:
        try:
            base = (directory / "VERSION").read_text().strip()
            system = (directory / "system.md").read_text()
            tools = (directory / "tools.md").read_text()
            goal_files = sorted((directory / "goals").glob("*.md"))
            goals = {p.stem: p.read_text() for p in goal_files}
        except OSError as err:
            raise PromptError(
                f"cannot read prompts in {directory}: {err.strerror} ({err.filename})"
            ) from None
        digest = hashlib.sha256()
        for part in (system, tools, *(f"{k}\n{v}" for k, v in sorted(goals.items()))):
            digest.update(part.encode())
        return cls(version=f"{base}+{digest.hexdigest()[:8]}", system=system, tools=tools, goals=goals)

    def goal_text(self, goal: str) -> str:
        return self.goals.get(goal) or self.goals.get("default") or f"Goal: {goal}."

    def messages(self, brief: Brief) -> list[Message]:
        # One fence for both documents: references are numbered across them, one nonce.
        fence = Fence.for_decision(brief.decision_id)
        event = fence.apply(brief.event, label="event")
        context = fence.apply(brief.context, label="context")
        parts = [
            self.goal_text(brief.goal).strip(),
            f"Customer: user_id={brief.user_id}. Trigger: {brief.trigger}.",
            "Triggering event or opportunity (free text replaced by references to the blocks below):\n"
            + json.dumps(event, default=str, sort_keys=True),
            "Live context (free text replaced by references to the blocks below):\n"
            + json.dumps(context, default=str, sort_keys=True),
            f"Tools you may use for this trigger: {', '.join(brief.allowed_tools)}.",
        ]
        untrusted = fence.notice()
        if untrusted:
            parts.append(untrusted)
        return [
            {"role": "system", "content": self.system.strip() + "\n\n" + self.tools.strip()},
            {"role": "user", "content": "\n\n".join(parts)},
        ]

"""Model providers behind `agent.model.ChatModel`: groq, openai-compatible, rules, scripted."""

from __future__ import annotations

from agent.errors import ModelError
from agent.model import ChatModel
from mca.settings import Settings


def make_model(settings: Settings, brain: str | None = None) -> ChatModel:
    """The brain the settings ask for (``auto``: groq with a key, else rules)."""
    chosen = brain or settings.resolved_brain()
    if chosen == "rules":
        from agent.providers.rules import RulesModel

        return RulesModel()
    if chosen == "groq":
        from agent.providers.chat_completions import groq_model

        return groq_model(settings)
    if chosen == "openai":
        from agent.providers.chat_completions import openai_model

        return openai_model(settings)
    raise ModelError(f"unknown brain {chosen!r} (use auto, rules, groq or openai)")

"""The shipped triggers file with experiments off, for tests about what a decision does.

With the shipped shares (salt mca-1) the shared test customer u_ana falls in the global
holdout, whose jobs never reach the brain. A test about decisions, prompts or actions uses
this copy, where nobody is held out or in control; a test of experiments opts in by reading
the shipped file (or writing its own shares).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mca.settings import PROJECT_ROOT

SHIPPED_TRIGGERS = PROJECT_ROOT / "config" / "triggers.yaml"


def triggers_without_experiments(folder: Path, source: Path = SHIPPED_TRIGGERS) -> Path:
    """Write `source` into `folder` as triggers.yaml with every holdout and control share 0."""
    document: dict[str, Any] = yaml.safe_load(source.read_text())
    document.setdefault("experiments", {}).update(holdout=0, control=0)
    for rule in document.get("rules") or []:
        if "control" in rule:
            rule["control"] = 0
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "triggers.yaml"
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    return target

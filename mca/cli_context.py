"""What every command reads from the command line's context: the settings, read once.

The composition root (`mca.cli`) reads them in its callback; package commands ask here, so no
package imports the root.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from mca.settings import Settings


def settings_of(ctx: typer.Context) -> Settings:
    # pydantic loads on a command's first read of the settings, not for `mca --help`
    from mca.settings import Settings, load_settings

    root = ctx.find_root()
    if root.obj is None:
        root.obj = load_settings()
    assert isinstance(root.obj, Settings)
    return root.obj

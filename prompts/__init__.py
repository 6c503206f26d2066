"""One prompt file per LLM role, loaded by name and overridable without touching the code.

``load_prompt("generator")`` reads ``generator.md``: first from ``prompts_dir`` if given,
then from ``$APIGEN_MT_PROMPTS_DIR``, then the copy shipped here. Placeholders are
``${name}`` (``string.Template``), so JSON examples with braces need no escaping;
:func:`render_prompt` fails loudly on a missing value instead of sending a hole to the model.
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any

SHIPPED = Path(__file__).parent
ENV_VAR = "APIGEN_MT_PROMPTS_DIR"


class PromptError(LookupError):
    """A prompt file is missing, or a placeholder has no value."""


def prompt_path(name: str, prompts_dir: str | Path | None = None) -> Path:
    """Where the prompt ``name`` is read from (an override wins over the shipped file)."""
    if not name.replace("_", "").isalnum():
        raise PromptError(f"invalid prompt name {name!r}")
    for folder in (prompts_dir, os.environ.get(ENV_VAR), SHIPPED):
        if folder and (Path(folder) / f"{name}.md").is_file():
            return Path(folder) / f"{name}.md"
    raise PromptError(f"no prompt {name!r}: expected {name}.md in {prompts_dir or ''} ${ENV_VAR} or {SHIPPED}")


def load_prompt(name: str, prompts_dir: str | Path | None = None) -> str:
    return prompt_path(name, prompts_dir).read_text(encoding="utf-8")


def render_prompt(name: str, /, prompts_dir: str | Path | None = None, **values: Any) -> str:
    """The prompt with every ``${placeholder}`` filled; PromptError names a missing one.

    ``name`` is positional-only so that a template may use ``${name}`` itself.
    """
    template = string.Template(load_prompt(name, prompts_dir))
    try:
        return template.substitute({k: str(v) for k, v in values.items()})
    except KeyError as error:
        raise PromptError(f"prompt {name!r} needs a value for ${{{error.args[0]}}}") from None
    except ValueError as error:
        raise PromptError(f"prompt {name!r} has a malformed placeholder: {error}") from None

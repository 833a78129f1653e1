"""A config that fails its schema, told in a few lines instead of the whole schema.

`snakemake.utils.validate` raises a WorkflowError that prints the failing subschema,
hundreds of lines for a misspelt top-level key. `describe_config_error` keeps what a
user needs: the key's path, what is wrong with it, the allowed keys or values (and the
nearest one), and the config file(s) that set it. Needs neither torch nor Snakemake.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml


def validation_error_of(error):
    """The jsonschema ValidationError inside a Snakemake WorkflowError, or None."""
    from jsonschema.exceptions import ValidationError

    seen = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ValidationError):
            return current
        stack.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
        stack.extend([current.__cause__, current.__context__])
    return None


_ANY = object()


def _files_setting(path, configfiles, value=_ANY):
    """The config files in which the key path (a list of keys) is present (with that value)."""
    found = []
    for file in configfiles:
        try:
            node = yaml.safe_load(Path(file).read_text())
        except (OSError, yaml.YAMLError):
            continue
        for key in path:
            in_dict = isinstance(node, dict) and key in node
            in_list = isinstance(node, list) and isinstance(key, int) and key < len(node)
            if not (in_dict or in_list):
                break
            node = node[key]
        else:
            if value is _ANY or node == value:
                found.append(str(file))
    return found


def _dotted(path):
    return ".".join(str(key) for key in path) if path else "(top level)"


def _nearest(word, choices):
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe_config_error(error, configfiles):
    """A few lines naming the key, what is wrong, what is allowed and where it was set."""
    invalid = validation_error_of(error)
    if invalid is None:
        return str(error)
    path = list(invalid.absolute_path)
    lines = []
    if invalid.validator == "additionalProperties" and isinstance(invalid.instance, dict):
        allowed = sorted(invalid.schema.get("properties", {}))
        patterns = sorted(invalid.schema.get("patternProperties", {}))
        unexpected = [k for k in invalid.instance if k not in allowed]
        for key in unexpected:
            lines.append(f"config error: unknown key {_dotted(path + [key])!r}{_nearest(key, allowed)}")
        shown = ", ".join(allowed) if allowed else "keys matching " + ", ".join(patterns)
        lines.append(f"  allowed under {_dotted(path)}: {shown}")
        where = _files_setting(path + unexpected[:1], configfiles)
    else:
        message = invalid.message if len(invalid.message) <= 200 else invalid.message[:200] + " ..."
        lines.append(f"config error at {_dotted(path)!r}: {message}")
        if invalid.validator == "enum":
            lines.append(f"  allowed values: {', '.join(map(str, invalid.validator_value))}"
                         f"{_nearest(invalid.instance, invalid.validator_value)}")
        description = invalid.schema.get("description")
        if description:
            description = " ".join(description.split())
            if len(description) > 160:
                description = description[:160].rsplit(" ", 1)[0] + " ..."
            lines.append(f"  {_dotted(path)}: {description}")
        where = _files_setting(path, configfiles, value=invalid.instance)
    if where:
        lines.append(f"  set in: {', '.join(where)}")
    else:
        lines.append("  set on the command line (--config) or by a default")
    return "\n".join(lines)

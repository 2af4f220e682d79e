"""Command-line overrides of frozen (nested) dataclass configs: ``--dotted.key=value``.

    config = apply_overrides(config, ["--train.learning_rate=1e-4", "--lora.r", "8"])

Accepted forms: ``--a.b=value``, ``--a.b value``, and a bare ``--a.b`` for a bool field (true).
A wandb sweep agent runs the program with ``--key=value`` (e.g. ``--train.learning_rate=2e-05``,
``--lora.target_modules=[q_proj, v_proj]``), which is the first form. Values are parsed against
the field's annotation: ``bool`` (true/false/1/0/yes/no/on/off), ``int``, ``float``, ``str``,
``tuple[X, ...]`` (``a,b``, ``[a, b]``, ``(a, b)`` or JSON; empty: ``[]`` or ``""``),
``X | None`` (``none``/``null``), ``Literal[...]`` (one of the literal values), nested dataclasses
(only through their leaves). A float that parses to NaN or an infinity (``nan``, ``inf``, ``1e309``)
is refused with a :class:`ConfigError`, whatever the field's range. An unknown key or a value of the wrong type raises
:class:`OverrideError`, a one-line message naming the key, what it expects and the closest valid
keys (:func:`describe_keys` lists them all, for ``--help``). The input config is never mutated:
the result is built with :func:`dataclasses.replace`, so each config's ``__post_init__`` checks
(written with :func:`check_range` / :func:`check_choice`) run on every override, before anything
loads; their :class:`ConfigError` names the full dotted key.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import enum
import json
import math
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal, Union

_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f"}
_NONE = {"none", "null", "~"}


from therapy_align.errors import UserError


class OverrideError(UserError, ValueError):
    """A bad override: unknown key, wrong type, or malformed argument."""


class ConfigError(UserError, ValueError):
    """A config value out of range or not among the known choices (raised by ``__post_init__``)."""


class NonFiniteValue(ValueError):
    """A float override that parses to NaN or an infinity (``nan``, ``inf``, ``1e309``)."""


def check_range(config: Any, name: str, *, gt: float | None = None, ge: float | None = None,
                lt: float | None = None, le: float | None = None, allow_none: bool = False,
                fix: str | None = None) -> None:
    """Raise :class:`ConfigError` (field ``name``) unless ``gt < value``, ``ge <= value``, ``value < lt``,
    ``value <= le`` hold (the bounds given). For ``__post_init__`` of frozen configs."""
    value = getattr(config, name)
    if value is None and allow_none:
        return
    bounds = [(gt, lambda v, b: v > b, ">"), (ge, lambda v, b: v >= b, ">="), (lt, lambda v, b: v < b, "<"),
              (le, lambda v, b: v <= b, "<=")]
    wanted = " and ".join(f"{sign} {bound:g}" for bound, _, sign in bounds if bound is not None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"must be a number {wanted}, got {value!r}", field=name, fix=fix)
    # NaN fails every comparison and inf passes every lower bound: either would reach the optimiser
    # or the sampler and give NaN weights or scores that look like results.
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"must be a finite number {wanted}".rstrip() + f", got {value!r}", field=name, fix=fix)
    for bound, holds, _ in bounds:
        if bound is not None and not holds(value, bound):
            raise ConfigError(f"must be {wanted}" + (" or None" if allow_none else "") + f", got {value!r}",
                              field=name, fix=fix)


def check_finite_numbers(config: Any, prefix: str = "") -> None:
    """Raise :class:`ConfigError` (the field's dotted name) for any float field of the dataclass
    ``config``, or float in a tuple field, that is NaN or infinite, including fields without a range
    check; nested dataclasses are checked by their own ``__post_init__``."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        items = value if isinstance(value, tuple | list) else (value,)
        for item in items:
            if isinstance(item, float) and not math.isfinite(item):
                raise ConfigError(f"must be a finite number, got {value!r}", field=f"{prefix}{f.name}")


def check_choice(config: Any, name: str, choices: Sequence[Any], *, fix: str | None = None) -> None:
    """Raise :class:`ConfigError` (field ``name``) unless the value is one of ``choices``."""
    value = getattr(config, name)
    if value not in choices:
        raise ConfigError(f"{value!r} is not one of {', '.join(map(str, choices))}", field=name, fix=fix)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def leaf_types(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"dotted.key": annotation}`` for every non-dataclass field of ``config`` (recursively).

    A :class:`~therapy_align.trainer_args.TrainerArgs` section contributes every field of its TRL
    config class, typed by TRL's own annotations."""
    from therapy_align.trainer_args import TrainerArgs

    out: dict[str, Any] = {}
    hints = _hints(type(config))
    for f in dataclasses.fields(config):
        tp = hints[f.name]
        value = getattr(config, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(leaf_types(value, key + "."))
        elif isinstance(value, TrainerArgs):
            out.update({f"{key}.{name}": ftp for name, ftp in value.field_types().items()})
        else:
            out[key] = tp
    return out


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "{" + "|".join(repr(a) if isinstance(a, str) else str(a) for a in typing.get_args(tp)) + "}"
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        return f"tuple[{type_name(args[0])}, ...]" if args else "tuple"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def describe_keys(config: Any) -> str:
    """Every overridable key with its type, one per line (for ``--help``); of a TRL trainer section,
    the fields the config sets, then one line for the rest."""
    from therapy_align.trainer_args import TrainerArgs

    sections = {}  # prefix -> TrainerArgs

    def find(value: Any, prefix: str) -> None:
        for f in dataclasses.fields(value):
            sub = getattr(value, f.name)
            if isinstance(sub, TrainerArgs):
                sections[f"{prefix}{f.name}."] = sub
            elif dataclasses.is_dataclass(sub) and not isinstance(sub, type):
                find(sub, f"{prefix}{f.name}.")

    find(config, "")
    lines = []
    for key, tp in sorted(leaf_types(config).items()):
        section = next((p for p in sections if key.startswith(p)), None)
        if section is None or key[len(section):] in sections[section]:
            lines.append(f"  --{key}  ({type_name(tp)})")
    lines += [f"  --{p}<field>  (any other field of {s.TRL_CONFIG}, by TRL's name and type)" for p, s in sections.items()]
    return "\n".join(lines)


def suggest_keys(key: str, config: Any) -> str:
    """One line pointing at the valid keys nearest ``key``: in its section, a key it abbreviates
    (``lr`` -> ``learning_rate``) or a close spelling; else the keys of its section; else the sections."""
    known = sorted(leaf_types(config))
    section, _, leaf = key.rpartition(".")
    siblings = [k for k in known if k.rpartition(".")[0] == section]
    leaves = {k.rpartition(".")[2]: k for k in siblings}
    close = [k for name, k in leaves.items()
             if name.startswith(leaf) or "".join(part[:1] for part in name.split("_")) == leaf]
    close += [leaves[name] for name in difflib.get_close_matches(leaf, list(leaves), n=3, cutoff=0.6)
              if leaves[name] not in close]
    close += [k for k in difflib.get_close_matches(key, known, n=3, cutoff=0.75) if k not in close]
    if close:
        return "did you mean " + " or ".join(f"--{k}" for k in close[:3]) + "?"
    if section and siblings:
        shown = ", ".join(f"--{k}" for k in siblings[:8])
        return f"keys of {section}: {shown}" + (f", ... ({len(siblings)} in all)" if len(siblings) > 8 else "")
    tops = sorted({k.split(".", 1)[0] + ("." if "." in k else "") for k in known})
    return "valid keys start with " + ", ".join(f"--{t}" for t in tops)


def parse_value(text: str, tp: Any) -> Any:
    """``text`` as a value of annotation ``tp``; ``ValueError`` when it is not one."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and text.strip().lower() in _NONE:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return parse_value(text, arg)
            except NonFiniteValue:
                raise
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(f"{text!r} is not a {type_name(tp)}" + (f" ({'; '.join(errors)})" if errors else ""))
    if origin is Literal:
        choices = typing.get_args(tp)
        for choice in choices:
            try:
                if parse_value(text, type(choice)) == choice:
                    return choice
            except ValueError:
                continue
        raise ValueError(f"{text!r} is not one of {', '.join(map(repr, choices))}")
    if origin is tuple:
        args = typing.get_args(tp)
        item_tp = args[0] if args else str
        if len(args) == 2 and args[1] is Ellipsis or len(args) <= 1:
            return tuple(parse_value(item, item_tp) for item in _split_sequence(text))
        items = _split_sequence(text)
        if len(items) != len(args):
            raise ValueError(f"{text!r} needs {len(args)} items")
        return tuple(parse_value(item, a) for item, a in zip(items, args, strict=True))
    if tp is bool:
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{text!r} is not a bool (true/false)")
    if tp is int:
        try:
            return int(text.strip())
        except ValueError:
            pass
        try:
            as_float = float(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not an int") from None
        if as_float.is_integer() and abs(as_float) < 2**63:
            return int(as_float)
        raise ValueError(f"{text!r} is not an int")
    if tp is float:
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a float") from None
        if not math.isfinite(value):  # "nan", "inf", or a literal past float range such as 1e309
            raise NonFiniteValue(f"{text!r} is not a finite float")
        return value
    if tp is str:
        return text
    if tp is type(None):
        if text.strip().lower() in _NONE:
            return None
        raise ValueError(f"{text!r} is not None")
    if tp is Any:
        return text
    if origin is list:
        args = typing.get_args(tp)
        return [parse_value(item, args[0] if args else str) for item in _split_sequence(text)]
    if tp is dict or origin is dict:
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a JSON object") from None
        if not isinstance(value, dict):
            raise ValueError(f"{text!r} is not a JSON object")
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if text.strip() in (str(member.value), member.name):
                return member.value
        raise ValueError(f"{text!r} is not one of {', '.join(str(m.value) for m in tp)}")
    raise ValueError(f"fields of type {type_name(tp)} cannot be overridden from the command line")


def _split_sequence(text: str) -> list[str]:
    stripped = text.strip()
    if stripped in ("", "[]", "()"):
        return []
    if stripped[0] in "[(" and stripped[-1] in "])":
        for loader in (json.loads, ast.literal_eval):
            try:
                value = loader(stripped)
            except (ValueError, SyntaxError):
                continue
            if isinstance(value, list | tuple):
                return [v if isinstance(v, str) else json.dumps(v) for v in value]
        stripped = stripped[1:-1]
    return [part.strip().strip("'\"") for part in stripped.split(",") if part.strip()]


def parse_argv(
    argv: Sequence[str], bool_keys: set[str] = frozenset(), config: Any = None
) -> list[tuple[str, str]]:
    """``(key, value_text)`` pairs from ``--key=value`` / ``--key value`` / bare bool ``--key``.

    With ``config``, keys are checked against its fields as they are read."""
    known = leaf_types(config) if config is not None else None
    pairs: list[tuple[str, str]] = []
    i = 0
    argv = list(argv)
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or arg == "--":
            hint = f"did you mean --{arg.lstrip('-')}?" if "=" in arg or "." in arg else "write --key=value"
            raise OverrideError(f"expected --key=value or --key value, got {arg!r}", field="argument", fix=hint)
        body = arg[2:]
        if "=" in body:
            key, value = body.split("=", 1)
            i += 1
        else:
            key = body
            _check_known(key.replace("-", "_"), known, config)
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            if key in bool_keys and (nxt is None or nxt.startswith("--")):
                value = "true"
                i += 1
            elif nxt is None:
                raise OverrideError("needs a value", field=f"--{key}", fix=f"write --{key}=VALUE or --{key} VALUE")
            else:
                value = nxt
                i += 2
        key = key.replace("-", "_")
        _check_known(key, known, config)
        pairs.append((key, value))
    return pairs


def _check_known(key: str, known: dict[str, Any] | None, config: Any) -> None:
    if known is not None and key not in known:
        raise OverrideError(f"unknown config key --{key}", field=f"--{key}", fix=suggest_keys(key, config))


def set_path(config: Any, dotted: str, value: Any) -> Any:
    """A copy of ``config`` with the (nested) field ``dotted`` replaced by ``value``."""
    from therapy_align.trainer_args import TrainerArgs

    head, _, rest = dotted.partition(".")
    if isinstance(config, TrainerArgs):
        return config.replace(**{dotted: value})
    if not rest:
        return dataclasses.replace(config, **{head: value})
    return dataclasses.replace(config, **{head: set_path(getattr(config, head), rest, value)})


def apply_overrides(config: Any, argv: Sequence[str]) -> Any:
    """``config`` with every ``--dotted.key=value`` of ``argv`` applied (later ones win).

    ``--help`` (or ``-h``) prints every key with its type and exits 0."""
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        raise TypeError("apply_overrides needs a dataclass instance")
    keys = leaf_types(config)
    if "--help" in argv or "-h" in argv:  # the one place a recipe's keys are listed in full
        print("Overrides: --dotted.key=value (or --key value; a bare --flag for bools). Keys and types:\n"
              + describe_keys(config))
        raise SystemExit(0)
    bool_keys = {k for k, tp in keys.items() if tp is bool}
    for key, text in parse_argv(argv, bool_keys, config):
        try:
            value = parse_value(text, keys[key])
        except NonFiniteValue:  # a value out of every range rather than of the wrong type
            raise ConfigError(f"must be a finite number, got {text.strip()!r}", field=f"--{key}") from None
        except ValueError as err:
            raise OverrideError(f"bad value for --{key} (expects {type_name(keys[key])}): {err}",
                                field=f"--{key}") from None
        try:
            config = set_path(config, key, value)
        except ConfigError as err:  # a __post_init__ check: name the full dotted key
            field = f"--{err.field}" if err.field and "." in err.field else f"--{key}"
            raise ConfigError(err.what, field=field, fix=err.fix) from None
    return config


def pop_option(
    argv: Sequence[str], name: str, *, default: Any = None, choices: Any = None, flag: bool = False
) -> tuple[Any, list[str]]:
    """Take ``--name value`` / ``--name=value`` (or a bare ``--name`` when ``flag``) out of ``argv``.

    For options that pick a config rather than set a field (``--preset``, ``--resume``).
    Returns ``(value, remaining_argv)``; the last occurrence wins."""
    rest: list[str] = []
    value = default
    i = 0
    argv = list(argv)
    while i < len(argv):
        arg = argv[i]
        if arg == f"--{name}":
            if flag:
                nxt = argv[i + 1] if i + 1 < len(argv) else None
                if nxt is not None and nxt.lower() in _TRUE | _FALSE:
                    value, i = parse_value(nxt, bool), i + 2
                else:
                    value, i = True, i + 1
                continue
            if i + 1 >= len(argv):
                raise OverrideError("needs a value", field=f"--{name}", fix=f"write --{name}=VALUE")
            value, i = argv[i + 1], i + 2
        elif arg.startswith(f"--{name}="):
            text = arg.split("=", 1)[1]
            try:
                value = parse_value(text, bool) if flag else text
            except ValueError as err:
                raise OverrideError(str(err), field=f"--{name}") from None
            i += 1
        else:
            rest.append(arg)
            i += 1
            continue
    if choices is not None and not flag and value not in choices:
        raise OverrideError(f"must be one of {', '.join(map(str, choices))}, got {value!r}", field=f"--{name}")
    return value, rest

"""Flags and helpers that several command groups of the command line share.

Owns: the model flags (`add_model_args`, `add_kernels_arg`); the settings flags of every command that crams,
generated from `CramSettings`' fields (`add_settings_args`, `settings_from_args`, `settings_given`); the
learner's-own-text flags (`add_text_args`, `check_text_args`, `load_texts`); the output-folder check
(`check_writable`). Does not own: any command, the settings' names, types, defaults or validation
(cramlab.engine.settings), or how a text is read and tokenized (cramlab.models.texts).

One flag per `CramSettings` field, spelt as the field with dashes (`n_mem` -> `--n-mem`), typed from the
dataclass: int, float, `--x/--no-x` for a bool, two floats for `betas`, `none` for an optional value,
the settings module's choices for a name. Every default is None, meaning "the preset's value", so
`--preset progressive-2026` keeps lr 0.1 and the cosine schedule unless `--lr` is given; the record then
says `progressive-2026+overrides`. A command with its own base (demo, poc) applies it only without --preset.
"""
from __future__ import annotations

import argparse
import re
import typing

from cramlab.engine.settings import (
    DTYPES,
    ENGINES,
    FIELD_NAMES,
    INITS,
    LAYOUTS,
    PRESETS,
    PROTOCOLS,
    SCHEDULES,
    CramSettings,
)
from cramlab.errors import writable_folder
from cramlab.kernels import KERNEL_CHOICES
from cramlab.models.texts import SOURCES

#: Fields that are the record of a preset, not knobs: `--preset` sets them.
NOT_FLAGS = ("preset", "overrides")
#: The names a field of type str may take (a str field missing here takes any string).
CHOICES = {"layout": LAYOUTS, "protocol": PROTOCOLS, "init": INITS, "lr_schedule": SCHEDULES, "engine": ENGINES,
           "dtype": DTYPES}
#: On a command that loads a model, `--dtype` is load_model's (add_model_args): the settings' dtype then stays
#: None, "the model's own", which is the same dtype, and the record shows it.
MODEL_FLAGS = ("dtype",)
_KIT = PRESETS["kit"]


class _Null:
    """`--patience none`: a value given on purpose (None), told apart from a flag not given (None too)."""

    def __repr__(self):
        return "none"


NULL = _Null()


def add_model_args(p) -> None:
    """--model, --device, --dtype, --trust-remote-code, --kernels (as `load_model` takes them)."""
    p.add_argument("--model", default="smollm2-135m", help="registry name, hub id, local folder or .gguf file")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--dtype", default=None, help="float32 (CPU default), bfloat16 (GPU default) or float16")
    p.add_argument("--trust-remote-code", action="store_true", help="allow code from the model repo (off by default)")
    add_kernels_arg(p)


def add_kernels_arg(p, default: str | None = "auto", note: str = "") -> None:
    """--kernels, as `load_model` takes it. `default` None: a sweep's config file may set it instead."""
    p.add_argument("--kernels", choices=KERNEL_CHOICES, default=default,
                   help="faster kernels: auto = Liger on CUDA when installed, torch = off, liger = required, "
                        "onednn = oneDNN's packed linears on a CPU (opt-in)" + note)


# --- the settings flags --------------------------------------------------------------------------------

def add_settings_args(parser, *, skip=(), aliases: dict | None = None, base_note: str = "") -> None:
    """`--preset` and one flag per `CramSettings` field not in `skip` (default None: the preset's value).

    `aliases` maps a field to older spellings kept working (`{"start_tokens": ["--start"]}`); `base_note`
    says what a command uses without --preset when it has its own base (demo, poc).
    """
    hints = typing.get_type_hints(CramSettings)
    helps = _field_helps()
    parser.add_argument("--preset", choices=list(PRESETS), default=None,
                        help="settings to start from: kit (default), grid-2025 (Kuratov et al.) or progressive-2026 "
                             "(Tarasov et al.); the flags below change single fields of it" + base_note)
    names = []
    for name in FIELD_NAMES:
        if name in NOT_FLAGS or name in skip:
            continue
        flags = ["--" + name.replace("_", "-"), *(aliases or {}).get(name, ())]
        kit = _KIT.to_dict()[name]
        text = helps.get(name, name.replace("_", " ")) + f" (default: the preset's; kit: {_show(kit)})"
        parser.add_argument(*flags, dest=name, default=None, help=text.replace("%", "%%"), **_typed(name, hints[name]))
        names.append(name)
    parser.set_defaults(_settings_fields=tuple(names))


def settings_given(args) -> dict:
    """The settings flags actually given on the command line, as CramSettings field values."""
    out = {}
    for name in getattr(args, "_settings_fields", ()):
        value = getattr(args, name)
        if value is not None:
            out[name] = None if value is NULL else tuple(value) if isinstance(value, list) else value
    return out


def settings_from_args(args, *, base: dict | None = None) -> CramSettings:
    """`CramSettings.from_preset(--preset or "kit", **flags given)`; `base` (a command's own defaults) applies
    only without --preset, under the flags. Validated here, so a mistake is reported before a model loads."""
    changes = ({} if args.preset else dict(base or {})) | settings_given(args)
    return CramSettings.from_preset(args.preset or "kit", **changes)


def _typed(name: str, hint) -> dict:
    """argparse keywords for a field of annotated type `hint`; a type it does not know fails loudly, so a
    new CramSettings field cannot silently go without its flag (tests/test_settings_surfaces.py)."""
    args = typing.get_args(hint)
    optional = type(None) in args
    inner = next((a for a in args if a is not type(None)), hint) if optional else hint
    if inner is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(inner) is tuple and set(typing.get_args(inner)) == {float}:
        n = len(typing.get_args(inner))
        return {"nargs": n, "type": float, "metavar": tuple(f"{name.upper()}{i + 1}" for i in range(n))}
    if inner in (int, float, str):
        choices = CHOICES.get(name)
        convert = _choice(name, choices) if choices else inner
        return {"type": _or_none(convert) if optional else convert, "metavar": _metavar(choices, inner, optional)}
    raise TypeError(f"CramSettings.{name} has type {hint!r}, which add_settings_args cannot make a flag of; "
                    "teach cramlab.cli.common._typed that type")


def _choice(name, choices):
    def convert(text):
        if text not in choices:
            raise argparse.ArgumentTypeError(f"invalid {name} {text!r} (choose from {', '.join(choices)})")
        return text
    return convert


def _or_none(convert):
    def convert_or_none(text):
        return NULL if text.lower() == "none" else convert(text)
    convert_or_none.__name__ = getattr(convert, "__name__", "value")
    return convert_or_none


def _metavar(choices, kind, optional) -> str | None:
    """`{a,b,none}` for names, `INT|none` for an optional number; argparse's own for the rest."""
    if choices:
        return "{" + ",".join([*choices, *(["none"] if optional else [])]) + "}"
    return f"{kind.__name__.upper()}|none" if optional else None


def _show(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return str(value)


def _field_helps() -> dict:
    """The help of each field, from the CramSettings docstring (the one place they are described): a line
    `name[, name...]   text`, and the more-indented lines under it."""
    out, names = {}, []
    for line in (CramSettings.__doc__ or "").splitlines():
        m = re.match(r"^\s{6}([a-z_]+(?:, [a-z_]+)*)\s{2,}(\S.*)$", line)
        if m:
            names = m.group(1).split(", ")
            for name in names:
                out[name] = (f"{name.replace('_', ' ')}: " if len(names) > 1 else "") + m.group(2).strip()
        elif names and re.match(r"^\s{7,}\S", line):
            for name in names:
                out[name] += " " + line.strip()
        else:
            names = []
    return out


# --- the learner's own text ----------------------------------------------------------------------------

def add_text_args(p, *, required: bool = False, default_source: str | None = None, source: bool = True) -> None:
    """--text, --text-file, --text-dir (the learner's own) or --source (a bundled or paper source): one of them.
    `source=False`: the learner's three only (a sweep has its own --sources)."""
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--text", help="your text itself")
    g.add_argument("--text-file", help="your UTF-8 file: one text")
    g.add_argument("--text-dir", help="your folder: every *.txt file under it (sorted by path) is one text")
    if not source:
        return
    g.add_argument("--source", choices=SOURCES, default=default_source,
                   help="a text source instead of your own"
                        + (f" (default {default_source})" if default_source else ""))


def own_text(args) -> bool:
    return any(getattr(args, k, None) is not None for k in ("text", "text_file", "text_dir"))


def check_text_args(args, n_tokens: int, n_texts: int = 1) -> None:
    """Every mistake in the text flags that can be found before the model loads."""
    from cramlab.models.texts import check_text_request
    check_text_request(n_tokens, text=args.text, text_file=args.text_file, text_dir=args.text_dir,
                       source=None if own_text(args) else args.source, n_texts=n_texts)


def load_texts(tokenizer, args, n_tokens: int, *, n_texts: int, seed: int, at_most: bool = False) -> list:
    """The texts a command crams: the learner's own, else `n_texts` of --source, each of `n_tokens` tokens.
    `at_most`: the learner's texts are cut at `n_tokens` but may be shorter (a search measures how far they go)."""
    from cramlab.models.texts import get_texts, user_texts
    if own_text(args):
        return user_texts(tokenizer, text=args.text, text_file=args.text_file, text_dir=args.text_dir,
                          n_tokens=n_tokens, at_most=at_most)
    return get_texts(tokenizer, args.source, n_tokens, n_texts=n_texts, seed=seed)


def check_writable(folder) -> None:
    """Create `folder` if needed; OutputPathError when it cannot be created or written (errors.writable_folder)."""
    writable_folder(folder)

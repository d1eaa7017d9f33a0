"""Every knob of a cramming run in one typed, frozen object: `CramSettings`, with the papers' presets.

Owns: the settings' names, types, defaults and validation (one place: `CramSettings.__post_init__`),
the paper presets (`grid-2025`: Kuratov et al., ACL 2025, as their public code runs it;
`progressive-2026`: Tarasov et al., ICML 2026, as theirs runs it), the learning-rate schedule as a
formula (`lr_factor`), and the layout / protocol / init names. Does not: run anything, import torch,
load models or read files.

`cram()`, the searches, the sweep config and the CLI flags all take their defaults from here. Every
result records `settings.to_dict()`, preset name included, so a number can always be traced back to
the run that made it. `CramSettings.from_preset("progressive-2026", layout="sink-first")` starts from a preset
and overrides a few fields; the record then says `preset="progressive-2026+overrides"` and lists them.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields

from cramlab.errors import BadInputError

#: Where the sink token (if any) and the vectors go. `mem-first` is the papers' layout.
LAYOUTS = ("sink-first", "mem-first")
#: Which positions are scored. `pc`: the last vector predicts t_1 too (all N scored);
#: `hc`: the authors' code of 2025, t_1 unscored (N - 1 scored).
PROTOCOLS = ("pc", "hc")
#: `randn`: randn * std(embedding matrix) (Kuratov et al.); `uniform`: uniform[0, 0.02) (Tarasov et al.).
INITS = ("randn", "uniform")
#: `constant`; `cosine`: linear warm-up from 0, then cosine down to `lr_floor` over `schedule_steps`.
SCHEDULES = ("constant", "cosine")
ENGINES = ("auto", "plain", "fast")
DTYPES = ("float32", "bfloat16", "float16")
#: Uniform init range of the progressive paper's `random0.02`.
UNIFORM_INIT_HIGH = 0.02


@dataclass(frozen=True)
class CramSettings:
    """One cramming run's settings. Frozen: derive a variant with `replace(...)`.

    Loop (used by `cram()`):
      n_mem            trainable vectors per text
      max_steps        optimiser steps per text per call (per length in progressive cramming)
      lr, betas, weight_decay, eps   AdamW's (the papers: betas (0.9, 0.9), weight decay 0.01)
      lr_schedule      `constant` or `cosine` (warm-up `warmup_steps` from 0, cosine to `lr_floor`
                       over `schedule_steps`); the position is each text's own optimiser step count,
                       so it carries over with the optimiser state
      patience         steps without a strictly better accuracy before a text gives up (None: never).
                       In a warm-started length the only strict improvement is reaching 100 %, so
                       patience there is a hard budget: the progressive preset leaves it off.
      target_accuracy  teacher-forced accuracy that counts as "fits" (1.0 = every token)
      freeze_converged a text whose training forward reached the target takes no further step (the
                       progressive paper's rule: its vectors are exactly the ones measured). Off (the kit's
                       default and the 2025 code's), it trains on until the next check, which widens the
                       margin of its argmax tokens before it is decoded
      protocol, layout, init, seed, check_every, dtype (None: the model's own), engine
      sink_token_id    the token before the vectors in `sink-first` (None: the model's own)
    Searches (used by `grid_search` / `progressive`):
      threshold        the grid's Max rule: mean best accuracy >= threshold (the paper: 0.99)
      start_tokens, step_tokens  progressive growth
      carry_optimizer  progressive: AdamW's moments and the schedule position go on to the next length
      max_total_steps  progressive: cumulative optimiser steps per text (None: no cap)
    """
    n_mem: int = 1
    max_steps: int = 2000
    lr: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.9)
    weight_decay: float = 0.01
    eps: float = 1e-8
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    lr_floor: float = 0.0
    schedule_steps: int = 10_000
    patience: int | None = None
    target_accuracy: float = 1.0
    freeze_converged: bool = False
    protocol: str = "pc"
    layout: str = "sink-first"
    init: str = "randn"
    seed: int = 0
    check_every: int = 10
    dtype: str | None = None
    engine: str = "auto"
    sink_token_id: int | None = None
    threshold: float = 0.99
    start_tokens: int = 2
    step_tokens: int = 1
    carry_optimizer: bool = False
    max_total_steps: int | None = None
    preset: str = "kit"
    overrides: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self):
        object.__setattr__(self, "betas", tuple(float(b) for b in _seq(self.betas, "betas")))
        if self.dtype is not None:
            object.__setattr__(self, "dtype", str(self.dtype).replace("torch.", ""))
        for name in ("n_mem", "max_steps", "check_every", "schedule_steps", "start_tokens", "step_tokens"):
            _positive_int(name, getattr(self, name))
        for name in ("patience", "max_total_steps"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        _non_negative_int("warmup_steps", self.warmup_steps)
        _non_negative_int("seed", self.seed)
        if not _is_number(self.lr) or not math.isfinite(self.lr) or self.lr <= 0:
            raise BadInputError(f"lr must be a finite number > 0, got {self.lr!r}; the papers use 1e-2 and 0.1")
        if not _is_number(self.lr_floor) or not (0 <= self.lr_floor <= self.lr):
            raise BadInputError(f"lr_floor must be in [0, lr={self.lr}], got {self.lr_floor!r}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise BadInputError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if not _is_number(self.weight_decay) or not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise BadInputError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not _is_number(self.eps) or not (0 < self.eps < 1):
            raise BadInputError(f"eps must be in (0, 1), got {self.eps!r}")
        for name in ("target_accuracy", "threshold"):
            value = getattr(self, name)
            if not _is_number(value) or not (0.0 < float(value) <= 1.0):
                raise BadInputError(f"{name} must be in (0, 1], got {value!r}")
        _one_of("protocol", self.protocol, PROTOCOLS)
        _one_of("layout", self.layout, LAYOUTS)
        _one_of("init", self.init, INITS, "or pass init_vectors for a warm start")
        _one_of("lr_schedule", self.lr_schedule, SCHEDULES)
        _one_of("engine", self.engine, ENGINES)
        if self.dtype is not None:
            _one_of("dtype", self.dtype, DTYPES, "(or None: the model's own)")
        if self.sink_token_id is not None:
            _non_negative_int("sink_token_id", self.sink_token_id)
        for name in ("carry_optimizer", "freeze_converged"):
            if not isinstance(getattr(self, name), bool):
                raise BadInputError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.protocol == "hc" and self.start_tokens < 2:
            raise BadInputError("protocol hc never scores t_1, so a text needs >= 2 tokens: use --start-tokens 2 "
                                "or protocol pc")

    # --- construction -------------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name: str = "kit", **overrides) -> CramSettings:
        """A paper preset, optionally with some fields changed (recorded in `preset` and `overrides`)."""
        if name not in PRESETS:
            raise BadInputError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)}")
        return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]

    def replace(self, **changes) -> CramSettings:
        """A copy with some fields changed; the record keeps which fields differ from the preset."""
        unknown = set(changes) - set(FIELD_NAMES)
        if unknown:
            raise BadInputError(f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(FIELD_NAMES)}")
        names = tuple(sorted(set(self.overrides) | {k for k in changes if k not in ("preset", "overrides")}))
        base_name = self.preset.split("+")[0]
        new = dataclasses.replace(self, **changes, overrides=())
        if base_name in PRESETS:
            names = tuple(k for k in names if getattr(new, k) != getattr(PRESETS[base_name], k))
        label = base_name + ("+overrides" if names else "")
        return dataclasses.replace(new, preset=changes.get("preset", label), overrides=names)

    @classmethod
    def from_dict(cls, data: dict) -> CramSettings:
        """Back from `to_dict()` (a results file, a sweep config); unknown keys are an error."""
        data = dict(data)
        unknown = set(data) - set(FIELD_NAMES)
        if unknown:
            raise BadInputError(f"unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(FIELD_NAMES)}")
        if "overrides" in data:
            data["overrides"] = tuple(data["overrides"])
        return cls(**data)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["betas"], out["overrides"] = list(self.betas), list(self.overrides)
        return out

    # --- derived ------------------------------------------------------------------------------------
    @property
    def n_prefix(self) -> int:
        """Positions before the text: the sink (sink-first) and the vectors."""
        return self.n_mem + (self.layout == "sink-first")

    def min_tokens(self) -> int:
        """Shortest text this protocol can score: 1 under `pc` (the vector predicts t_1), 2 under `hc`."""
        return 1 if self.protocol == "pc" else 2

    def length_budget(self, total_steps):
        """Steps a text may take at its next length in progressive cramming: `max_steps`, or what is left of
        `max_total_steps` (at least 1). `total_steps`: a number, or a tensor of per-text totals (grow.py
        evaluates it inside its captured step); the per-length loop and grow share this one rule."""
        if self.max_total_steps is None:
            return total_steps * 0 + self.max_steps
        left = self.max_total_steps - total_steps
        return left.clamp(1, self.max_steps) if hasattr(left, "clamp") else max(1, min(self.max_steps, left))

    def lr_at(self, step: int) -> float:
        """The learning rate of a text's optimiser step number `step` (0-based)."""
        return self.lr * lr_factor(step, self.lr_schedule, self.warmup_steps, self.schedule_steps,
                                   self.lr_floor / self.lr)


def lr_factor(step, schedule: str, warmup_steps: int, schedule_steps: int, floor_ratio: float):
    """Multiplier of the base lr at optimiser step `step` (0-based; a float, or a tensor of steps).

    `cosine` is transformers' `cosine_with_min_lr` schedule with warm-up, as the progressive paper runs it
    (`get_scheduler("cosine_with_min_lr", num_warmup_steps, num_training_steps, min_lr=...)`): linear
    from 0 over the warm-up, then half a cosine from 1 down to `floor_ratio` at `schedule_steps`, and
    `floor_ratio` after. A test checks it against transformers' own scheduler. Written with operations
    that work on numbers and on tensors alike, so the fast engine evaluates it inside a CUDA graph.
    """
    if schedule == "constant":
        return step * 0 + 1.0
    warm = step / max(1, warmup_steps)
    progress = (step - warmup_steps) / max(1, schedule_steps - warmup_steps)
    progress = _clamp01(progress)
    cosine = 0.5 * (1.0 + _cos(math.pi * progress))
    after = floor_ratio + (1.0 - floor_ratio) * cosine
    return _where(step < warmup_steps, warm, after)


#: The presets. `kit`: the kit's defaults (sink-first, pc, the 2025 optimiser). The two paper presets
#: follow the authors' public code (see /docs/results.md and paper-notes): layout `mem-first` as theirs.
PRESETS: dict[str, CramSettings] = {}


def _register_presets():
    kit = CramSettings()
    grid = CramSettings(max_steps=5000, lr=1e-2, lr_schedule="constant", patience=2000, target_accuracy=1.0,
                        protocol="hc", layout="mem-first", init="randn", threshold=0.99, start_tokens=2,
                        preset="grid-2025")
    progressive = CramSettings(max_steps=1000, lr=0.1, lr_schedule="cosine", warmup_steps=100, lr_floor=1e-3,
                               schedule_steps=10_000, patience=None, target_accuracy=1.0, protocol="pc",
                               layout="mem-first", init="uniform", start_tokens=1, step_tokens=1,
                               carry_optimizer=True, max_total_steps=10_000, check_every=1, freeze_converged=True,
                               preset="progressive-2026")
    PRESETS.update({"kit": kit, "grid-2025": grid, "progressive-2026": progressive})


FIELD_NAMES = tuple(f.name for f in fields(CramSettings))


# --- small helpers ------------------------------------------------------------------------------------

def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadInputError(f"{name} must be an integer >= 1, got {value!r}")


def _non_negative_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadInputError(f"{name} must be an integer >= 0, got {value!r}")


def _one_of(name, value, allowed, extra=""):
    if value not in allowed:
        raise BadInputError(f"unknown {name} {value!r}; use one of {', '.join(allowed)}"
                            + (f" {extra}" if extra else ""))


def _seq(value, name):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise BadInputError(f"{name} must be two numbers, got {value!r}")
    return value


def _clamp01(x):
    if hasattr(x, "clamp"):
        return x.clamp(0.0, 1.0)
    return min(1.0, max(0.0, x))


def _cos(x):
    return x.cos() if hasattr(x, "cos") else math.cos(x)


def _where(cond, a, b):
    if hasattr(cond, "dtype"):
        import torch  # only reached with tensors, so this module stays import-light
        return torch.where(cond, a, b)
    return a if cond else b


_register_presets()

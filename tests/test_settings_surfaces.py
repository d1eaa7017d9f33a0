"""One definition of every setting, on every surface (issue 27, section 2), and the front door (section 3).

- Every command that crams (`cram`, `demo`, `search grid|bisect|progressive`, `sweep`, `poc`) accepts every
  `CramSettings` field and every preset: generated over FIELD_NAMES x commands, so a new field without a
  flag fails here. Each flag sets exactly its field, to the value given.
- A preset's values survive unless a flag is given; the record then says `<preset>+overrides`.
- `poc --preset grid-2025` gets the preset's lr, not the PoC's own 0.1.
- Old sweep configs still load; a key whose meaning moved fails in one line naming the new key.
- `cram --text-file F`, `search progressive --text-file F` and `sweep --text-file F` run end to end on the
  tiny model; `--text-dir` reads every *.txt under a folder.
- Every name of `cramlab.__all__` resolves, `import cramlab` does not import torch.
"""
import json
import subprocess
import sys
import typing

import pytest

from cramlab.cli import build_parser, main
from cramlab.cli.common import MODEL_FLAGS, NOT_FLAGS, settings_from_args
from cramlab.cli.poc import poc_cram_settings
from cramlab.cli.sweep import config_from_args
from cramlab.engine.settings import FIELD_NAMES, PRESETS, CramSettings
from cramlab.errors import ConfigError
from cramlab.science.sweep import AXES, load_config

KIT = PRESETS["kit"]
#: Every command that crams, with the least it needs to parse.
COMMANDS = {
    "cram": ["cram", "--text", "hello", "--n-tokens", "4"],
    "demo": ["demo"],
    "search grid": ["search", "grid"],
    "search bisect": ["search", "bisect"],
    "search progressive": ["search", "progressive"],
    "sweep": ["sweep", "--out", "r.jsonl"],
    "poc": ["poc", "--demo"],
}
WITH_MODEL_ARGS = ("cram", "search grid", "search bisect", "search progressive", "poc")
SETTINGS_FIELDS = [f for f in FIELD_NAMES if f not in NOT_FLAGS]


def other_value(name):
    """A valid value of field `name` that differs from the kit's, and the command-line words that give it."""
    from cramlab.cli.common import CHOICES
    hint = typing.get_type_hints(CramSettings)[name]
    kit = getattr(KIT, name)
    args = typing.get_args(hint)
    inner = next((a for a in args if a is not type(None)), hint) if type(None) in args else hint
    flag = "--" + name.replace("_", "-")
    if inner is bool:
        return (not kit), [("--no-" if kit else "--") + name.replace("_", "-")]
    if typing.get_origin(inner) is tuple:
        return (0.8, 0.95), [flag, "0.8", "0.95"]
    if name in CHOICES:
        value = next(c for c in CHOICES[name] if c != kit)
        return value, [flag, value]
    if inner is int:
        value = 5 if kit is None else kit + 1
        return value, [flag, str(value)]
    if inner is float:
        value = kit / 2 if kit else 0.001
        return value, [flag, repr(value)]
    raise AssertionError(f"no test value for CramSettings.{name} of type {hint!r}: teach other_value")


def parse(command, *extra):
    return build_parser().parse_args([*COMMANDS[command], *map(str, extra)])


def settings_of(command, args) -> CramSettings:
    """The CramSettings a command would run with, as the command builds it."""
    if command == "poc":
        return poc_cram_settings(args)[0]
    if command == "demo":
        from cramlab.cli.basic import DEMO_BASE
        return settings_from_args(args, base=DEMO_BASE)
    if command == "sweep":
        cfg = config_from_args(args)
        return cfg.settings.replace(n_mem=cfg.n_mem[0], layout=cfg.layouts[0], protocol=cfg.protocols[0])
    return settings_from_args(args)


@pytest.mark.parametrize("field", SETTINGS_FIELDS)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_accepts_every_field(command, field):
    value, words = other_value(field)
    args = parse(command, *words)
    if field in MODEL_FLAGS and command in WITH_MODEL_ARGS:
        assert args.dtype == value            # load_model's dtype; the settings keep "the model's own"
        assert settings_of(command, args).dtype is None
        return
    s = settings_of(command, args)
    assert getattr(s, field) == value, (command, field)
    base = settings_of(command, parse(command))
    others = [f for f in SETTINGS_FIELDS if f != field and getattr(s, f) != getattr(base, f)]
    assert others == [], f"{command} {' '.join(words)} also changed {others}"


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_takes_every_preset_as_it_is(command, preset):
    s = settings_of(command, parse(command, "--preset", preset))
    assert s == PRESETS[preset] and s.preset == preset          # nothing of the command's own leaks in


def test_a_preset_survives_unless_a_flag_is_given():
    s = settings_of("cram", parse("cram", "--preset", "progressive-2026"))
    assert (s.lr, s.lr_schedule, s.warmup_steps, s.layout, s.preset) == (0.1, "cosine", 100, "mem-first",
                                                                       "progressive-2026")
    s = settings_of("cram", parse("cram", "--preset", "progressive-2026", "--lr", "0.05"))
    assert s.lr == 0.05 and s.preset == "progressive-2026+overrides" and s.overrides == ("lr",)
    assert s.replace(lr=0.1) == PRESETS["progressive-2026"]                   # only lr changed
    s = settings_of("search progressive", parse("search progressive", "--preset", "grid-2025", "--start", "3",
                                                "--patience", "none", "--no-carry-optimizer"))
    assert (s.start_tokens, s.patience, s.lr, s.protocol) == (3, None, 1e-2, "hc")   # --start: the old spelling
    assert s.overrides == ("patience", "start_tokens")           # carry_optimizer False is the preset's own


def test_poc_base_is_visible_and_a_preset_replaces_it():
    s, cram = poc_cram_settings(parse("poc"))
    assert (s.lr, s.max_steps, s.preset) == (0.1, 300, "kit+overrides")      # the PoC's own base
    assert cram == {"lr": 0.1, "max_steps": 300, "seed": 0, "progress": False}
    s, cram = poc_cram_settings(parse("poc", "--preset", "grid-2025"))
    assert (s.lr, s.max_steps, s.patience, s.preset) == (1e-2, 5000, 2000, "grid-2025")   # no lr 0.1
    assert cram == {"seed": 0, "progress": False}
    s, cram = poc_cram_settings(parse("poc", "--preset", "grid-2025", "--lr", "0.2", "--n-mem", "2"))
    assert (s.lr, s.max_steps, s.n_mem) == (0.2, 5000, 2) and cram == {"lr": 0.2, "seed": 0, "progress": False}


def test_demo_base_only_without_a_preset():
    s = settings_of("demo", parse("demo"))
    assert (s.lr, s.max_steps, s.check_every) == (0.1, 1500, 1)
    assert settings_of("demo", parse("demo", "--preset", "kit")) == KIT


def test_bad_flag_values_are_one_line_errors(capsys):
    with pytest.raises(SystemExit):
        parse("cram", "--layout", "middle")
    assert "invalid layout 'middle'" in capsys.readouterr().err
    assert main([*COMMANDS["cram"], "--lr", "-1", "--model", "tiny-llama"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: lr must be a finite number > 0") and "\n" not in err


# --- the sweep's config: CramSettings' fields, old files still load ---------------------------------------

def test_old_sweep_config_keys_still_load(tmp_path):
    y = tmp_path / "old.yaml"
    y.write_text("models: [tiny-llama]\nlengths: [4]\npreset: grid-2025\nmax_steps: 7\nlr: 0.5\npatience: 3\n"
                 "target_accuracy: 0.9\ncheck_every: 2\nseed: 1\ndtype: float32\nengine: plain\nn_mem: [1, 2]\n"
                 "layouts: [sink-first]\nprotocols: [pc]\n")
    cfg = load_config(y)
    assert (cfg.max_steps, cfg.lr, cfg.patience, cfg.seed, cfg.preset) == (7, 0.5, 3, 1, "grid-2025")
    assert cfg.settings.init == "randn" and cfg.n_mem == [1, 2]
    assert set(cfg.result_settings()) == {"preset", "max_steps", "lr", "patience", "target_accuracy", "check_every",
                                          "seed", "dtype", "decode", "engine"}
    # every CramSettings field is a key now, typed and checked by CramSettings
    cfg = load_config(None, lr_schedule="cosine", betas=[0.8, 0.95], preset="progressive-2026")
    assert cfg.settings.betas == (0.8, 0.95) and cfg.settings.overrides == ("betas",)


@pytest.mark.parametrize("data, pattern", [
    ({"layout": "mem-first"}, r"^key 'layout' in sweep.yaml is now 'layouts'; rename it$"),
    ({"protocol": "hc"}, r"^key 'protocol' in sweep.yaml is now 'protocols'"),
    ({"betas": [0.9]}, r"key 'betas'.*a list of 2 numbers"),
    ({"lr_schedule": "linear"}, r"key 'lr_schedule'.*unknown lr_schedule 'linear'"),
])
def test_sweep_config_errors_name_the_key(data, pattern):
    from cramlab.science.sweep import validate_config
    with pytest.raises(ConfigError, match=pattern):
        validate_config(data, "sweep.yaml")


def test_sweep_axes_are_the_settings_fields():
    assert set(AXES.values()) <= set(FIELD_NAMES)
    cfg = config_from_args(parse("sweep", "--preset", "progressive-2026", "--layout", "sink-first,mem-first",
                                 "--n-mem", "1,2"))
    assert cfg.layouts == ["sink-first", "mem-first"] and cfg.n_mem == [1, 2] and cfg.protocols == ["pc"]


# --- the learner's own text, end to end on the tiny model ---------------------------------------------------

def test_cram_text_file_end_to_end(tiny, tmp_path, capsys):
    from cramlab.models.texts import encode
    f = tmp_path / "my.txt"
    f.write_text("Cramming puts a whole text into one vector of numbers.", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["cram", "--model", "tiny-llama", "--device", "cpu", "--text-file", str(f), "--n-tokens", "5",
                 "--preset", "progressive-2026", "--lr", "0.05", "--max-steps", "3", "--no-progress",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    first5 = tiny.tokenizer.decode(encode(tiny.tokenizer, f.read_text())[:5])
    assert f"[my.txt] original: {first5!r}" in text
    assert "layout mem-first, protocol pc, lr 0.05, preset progressive-2026+overrides" in text
    (row,) = json.loads((out / "results.json").read_text())
    s = row["settings"]
    assert (s["preset"], s["lr"], s["lr_schedule"], s["max_steps"]) == ("progressive-2026+overrides", 0.05,
                                                                         "cosine", 3)
    assert sorted(s["overrides"]) == ["lr", "max_steps"] and row["n_tokens"] == 5 and row["text_id"] == "my.txt"


def test_search_progressive_text_file_answers_how_many_tokens_fit(tiny, tmp_path, capsys):
    """A 5-token text and a budget no length can meet (lr 1e-4, 2 steps): the answer is known in advance,
    0 tokens fit and 2 (the first length) did not; the cap is the text's own length, not --max-tokens."""
    from cramlab.models.texts import encode
    f = tmp_path / "mine.txt"
    f.write_text("One two three four five", encoding="utf-8")
    n = len(encode(tiny.tokenizer, f.read_text()))
    assert n < 64
    assert main(["search", "progressive", "--model", "tiny-llama", "--device", "cpu", "--text-file", str(f),
                 "--lr", "1e-4", "--max-steps", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"progressive cramming: tiny-llama, {f}, preset kit+overrides") and \
        lines[0].endswith(f"cap {n}")
    assert lines[-1] == "mine.txt: 0 tokens fit in 1 vector; 2 did not within 2 steps"


def test_text_dir_and_its_mistakes(tiny, tmp_path, capsys):
    from cramlab.models.texts import user_texts
    (tmp_path / "b").mkdir()
    (tmp_path / "a.txt").write_text("First text of mine, long enough.", encoding="utf-8")
    (tmp_path / "b" / "c.txt").write_text("Second text, in a sub-folder.", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not a text", encoding="utf-8")
    texts = user_texts(tiny.tokenizer, text_dir=tmp_path, n_tokens=3)
    assert [t.text_id for t in texts] == ["a.txt", "b/c.txt"] and all(t.n_tokens == 3 for t in texts)
    assert main(["cram", "--model", "tiny-llama", "--text-dir", str(tmp_path / "none"), "--n-tokens", "3"]) == 2
    assert "text folder" in capsys.readouterr().err
    assert main(["search", "grid", "--model", "tiny-llama", "--device", "cpu", "--text-dir", str(tmp_path),
                 "--lengths", "4,400"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--lengths goes to 400" in err and "\n" not in err


def test_sweep_takes_your_own_text(tiny, tmp_path):
    from cramlab.models.texts import encode
    from cramlab.science.results_file import read_results
    (tmp_path / "notes").mkdir()
    for name in ("a.txt", "b.txt"):
        (tmp_path / "notes" / name).write_text(f"Notes of mine in file {name}, long enough.", encoding="utf-8")
    cfg = load_config(None, text_dir=str(tmp_path / "notes"), lengths=[4])
    assert (cfg.sources, cfg.n_texts) == (["own"], 2)            # n_texts: the files of the folder
    with pytest.raises(ConfigError, match=r"give one of 'sources', 'text', 'text_file', 'text_dir', not 'text_dir'"):
        load_config(None, text_dir=str(tmp_path / "notes"), sources=["unseen"])
    f = tmp_path / "notes" / "a.txt"
    out = tmp_path / "r.jsonl"
    assert main(["sweep", "--text-file", str(f), "--models", "tiny-llama", "--lengths", "4", "--max-steps", "2",
                 "--device", "cpu", "--out", str(out)]) == 0
    (row,) = read_results(out)
    assert (row["source"], row["text_id"], row["n_tokens"]) == ("own", "a.txt", 4)
    assert row["token_ids"] == encode(tiny.tokenizer, f.read_text())[:4]


# --- the front door ----------------------------------------------------------------------------------------

def test_every_front_door_name_resolves():
    import importlib

    import cramlab
    for name in cramlab.__all__:
        assert getattr(cramlab, name) is not None, name
    for name, module in cramlab.EXPORTS.items():
        assert getattr(cramlab, name) is getattr(importlib.import_module(f"cramlab.{module}"), name)
    import cramlab.engine.plain  # noqa: F401  (importing the engine's modules changes nothing at the front door)
    from cramlab import cram, decode
    assert callable(cram) and cram.__module__ == "cramlab.engine.plain" and decode.__module__ == "cramlab.engine.decode"
    from cramlab import capacity as cap
    assert cap.__name__ == "cramlab.capacity"                   # a module, as the notebooks import it


def test_import_cramlab_stays_light():
    code = "import sys, cramlab; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]

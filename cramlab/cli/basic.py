"""The basic commands: `cramlab capacity | cram | decode | demo | env`.

Owns: their flags, their printed tables and JSON (CRAM_JSON_KEYS), the exit code of an interrupted cram.
Does not own: what they compute (cramlab.capacity, cram, decode, vectors, env) or the error handling
shared by every command (cramlab.cli.main). Heavy modules (torch) load inside the commands.
"""
from __future__ import annotations

import json
import sys

from cramlab.cli.common import (
    MODEL_FLAGS,
    add_kernels_arg,
    add_model_args,
    add_settings_args,
    add_text_args,
    check_text_args,
    check_writable,
    load_texts,
    settings_from_args,
)


def register(subparsers) -> None:
    """capacity, cram, decode, demo, env."""
    p = subparsers.add_parser("capacity", help="theoretical capacity of input vectors, in bits and tokens")
    p.add_argument("--model", help="a registered model name (see `cramlab capacity --list`)")
    p.add_argument("--d", type=int, help="vector size (instead of --model)")
    p.add_argument("--vocab", type=int, help="vocabulary size (instead of --model)")
    p.add_argument("--bits", type=int, default=16, help="bits per value (the paper: 16)")
    p.add_argument("--n-mem", type=int, default=1, help="number of vectors")
    p.add_argument("--list", action="store_true", help="the whole registry")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_capacity)

    p = subparsers.add_parser("cram", help="cram text(s) into vectors, decode them back, print the figures")
    add_model_args(p)
    add_text_args(p, required=True)
    p.add_argument("--n-texts", type=int, default=1, help="texts from --source (crammed as one batch)")
    p.add_argument("--n-tokens", type=int, required=True, help="tokens of each text (its first N)")
    add_settings_args(p, skip=MODEL_FLAGS)
    p.add_argument("--out", help="folder for vector files (.safetensors) and results.json")
    p.add_argument("--json", action="store_true", help="print one JSON array, one object per text")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_cram)

    p = subparsers.add_parser("decode", help="decode a vector file back to text")
    p.add_argument("file")
    add_model_args(p)
    p.add_argument("--force", action="store_true", help="decode even if the file was made for other weights")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_decode)

    p = subparsers.add_parser("demo",
                              help="the main job on the embedded model: cram a bundled 16-token text, decode it")
    p.add_argument("--n-tokens", type=int, default=16)
    add_text_args(p, default_source="unseen")
    add_settings_args(p, base_note=f"; without --preset the demo uses kit with {_show_base(DEMO_BASE)}")
    add_kernels_arg(p, note="; on a CPU, onednn makes each step 1.4-1.8x cheaper (docs/performance.md)")
    p.set_defaults(func=cmd_demo)

    p = subparsers.add_parser("env", help="environment check: versions, device, the embedded model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_env)


def cmd_capacity(args) -> int:
    from cramlab import capacity as cap
    if args.list:
        rows = cap.capacity_table(bits=args.bits, n_mem=args.n_mem)
        if args.json:
            print(json.dumps(rows))
        else:
            print(f"{'model':<20}{'d':>6}{'vocab':>9}{'tokens':>9}")
            for r in rows:
                print(f"{r['model']:<20}{r['d']:>6}{r['vocab_size']:>9}{r['capacity_tokens']:>9}")
        return 0
    if args.model:
        c = cap.capacity_of(args.model, bits=args.bits, n_mem=args.n_mem)
    elif args.d is not None and args.vocab is not None:
        c = cap.capacity(args.d, args.vocab, bits=args.bits, n_mem=args.n_mem)
    else:
        raise cap.BadInputError("give --model NAME, or both --d and --vocab")
    row = c.to_dict()
    if args.json:
        keys = ("d", "vocab_size", "bits_per_value", "n_mem", "capacity_bits", "capacity_tokens")
        print(json.dumps({k: row[k] for k in keys} | ({"model": row["model"]} if row["model"] else {})))
    else:
        if row["model"]:
            print(f"model              {row['model']}")
        print(f"vector size d      {row['d']}\nvocabulary |V|     {row['vocab_size']}\n"
              f"bits per value     {row['bits_per_value']}\nvectors n_mem      {row['n_mem']}\n"
              f"capacity (bits)    {row['capacity_bits']}\n"
              f"capacity (tokens)  {row['capacity_tokens']}  (= d*bits*n_mem / log2|V| = "
              f"{row['capacity_tokens_exact']:.1f})")
    return 0


#: The demo's own base, used without --preset: lr 0.1 (the follow-up paper's for SmolLM2) converges the demo's
#: 16 tokens in about a third of the steps of the 2025 paper's 1e-2; every step is checked (check_every 1):
#: on a CPU reading the accuracy back costs nothing, and the text stops at the step it fits.
DEMO_BASE = dict(lr=0.1, max_steps=1500, check_every=1)


def _show_base(base: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in base.items())

CRAM_JSON_KEYS = ("text_id", "n_tokens", "n_mem", "converged", "steps", "teacher_forced_accuracy", "greedy_exact",
                  "first_mismatch", "baseline_ce_nats", "final_ce_nats", "info_gain_nats", "info_gain_bits",
                  "gain_tokens", "baseline_accuracy", "stop_reason", "seconds")


def cmd_cram(args) -> int:
    from pathlib import Path

    from cramlab.engine.plain import cram
    from cramlab.engine.vectors import save_vectors
    from cramlab.models.load import load_model
    # every mistake that can be known without the model, before the model loads
    settings = settings_from_args(args)
    check_text_args(args, args.n_tokens, args.n_texts)
    out_dir = Path(args.out) if args.out else None
    if out_dir is not None:
        check_writable(out_dir)
    lm = load_model(args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                    kernels=args.kernels)
    texts = load_texts(lm.tokenizer, args, args.n_tokens, n_texts=args.n_texts, seed=settings.seed)
    results = cram(lm, texts, settings, progress=not (args.json or args.no_progress))
    if out_dir is not None:
        for r in results:
            save_vectors(out_dir / f"{r.text_id}.n{r.n_tokens}.k{r.n_mem}.safetensors", r, lm.spec)
        (out_dir / "results.json").write_text(json.dumps([r.to_dict() for r in results], indent=1))
    if args.json:
        print(json.dumps([{k: r.to_dict()[k] for k in CRAM_JSON_KEYS} for r in results]))
        return _cram_exit_code(results)
    print(f"model {lm.spec.name} (d={lm.spec.d}, |V|={lm.spec.vocab_size}) on {lm.spec.device}, "
          f"layout {settings.layout}, protocol {settings.protocol}, lr {settings.lr}"
          + (f", preset {settings.preset}" if settings.preset != "kit" else ""))
    print(f"{'text':<30}{'N':>5}{'k':>3}{'steps':>7}{'acc':>7}{'greedy':>8}{'CE0 nats':>10}{'CE nats':>9}"
          f"{'IG bits':>9}{'sec':>7}")
    for r in results:
        print(f"{r.text_id[:29]:<30}{r.n_tokens:>5}{r.n_mem:>3}{r.steps:>7}{r.teacher_forced_accuracy:>7.3f}"
              f"{r.greedy_exact!s:>8}{r.baseline_ce_nats:>10.1f}{r.final_ce_nats:>9.1f}"
              f"{r.info_gain_bits:>9.1f}{r.seconds:>7.1f}")
    for r in results:
        print(f"\n[{r.text_id}] original: {lm.tokenizer.decode(r.token_ids)!r}")
        print(f"[{r.text_id}] decoded : {r.decoded_text!r}")
    if out_dir is not None:
        print(f"\nvectors and results.json written to {out_dir}/")
    return _cram_exit_code(results)


def _cram_exit_code(results) -> int:
    """130 (as for Ctrl-C) when cramming was interrupted: what was reached is printed and saved above."""
    if any(r.interrupted for r in results):
        print("error: interrupted; the results above (and the --out files) are what was reached so far",
              file=sys.stderr)
        return 130
    return 0


def cmd_decode(args) -> int:
    from cramlab.engine.vectors import decode_file, load_vectors
    from cramlab.models.load import load_model
    meta = load_vectors(args.file).meta   # validate the file before loading a model
    model = args.model if args.model != "smollm2-135m" or not meta.get("model") else meta["model"]
    lm = load_model(model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                    kernels=args.kernels)
    decoded = decode_file(lm, args.file, force=args.force)
    exact = decoded.token_ids == meta.get("token_ids")
    if args.json:
        print(json.dumps({"text": decoded.text, "token_ids": decoded.token_ids, "matches_crammed_text": exact}))
    else:
        print(decoded.text)
    return 0


def cmd_demo(args) -> int:
    import time

    from cramlab.capacity import capacity
    from cramlab.engine.plain import cram
    from cramlab.models.load import load_model
    settings = settings_from_args(args, base=DEMO_BASE)
    check_text_args(args, args.n_tokens)
    t0 = time.perf_counter()
    lm = load_model("smollm2-135m", device="cpu", kernels=args.kernels)
    spec = lm.spec
    cap = capacity(spec.d, spec.vocab_size)
    print(f"embedded model   {spec.name}  ({spec.n_params / 1e6:.0f}M parameters, {spec.n_layers} layers, "
          f"loaded in {time.perf_counter() - t0:.1f} s, kernels {spec.kernels})")
    print(f"vector size d    {spec.d}\nvocabulary |V|   {spec.vocab_size}")
    print(f"capacity         {cap.capacity_tokens} tokens in one vector  (d*16 bits / log2|V| = "
          f"{cap.capacity_tokens_exact:.1f})")
    text = load_texts(lm.tokenizer, args, args.n_tokens, n_texts=1, seed=settings.seed)[0]
    print(f"\ntext ({text.text_id}, {text.n_tokens} tokens): {text.text!r}")
    preset = f"preset {settings.preset}, " if args.preset else ""
    print(f"cramming it into {settings.n_mem} vector{'s' if settings.n_mem > 1 else ''} on CPU ({preset}"
          f"lr {settings.lr:g}, up to {settings.max_steps} steps) ...")
    r = cram(lm, [text], settings)[0]
    print(f"cross-entropy    {r.baseline_ce_nats:.1f} nats without the vector ({r.baseline_ce_per_token_nats:.2f} "
          f"per token), {r.final_ce_nats:.1f} nats with it")
    print(f"information gain {r.info_gain_bits:.1f} bits  ({r.info_gain_nats:.1f} nats)")
    print(f"teacher-forced   {r.teacher_forced_accuracy:.3f} accuracy after {r.steps} steps ({r.seconds:.0f} s), "
          f"without the vector {r.baseline_accuracy:.3f}")
    print(f"decoded back     {r.decoded_text!r}")
    print(f"greedy exact     {r.greedy_exact}")
    return 0 if r.greedy_exact else 1


def cmd_env(args) -> int:
    from cramlab.env import environment_report
    report = environment_report()
    if args.json:
        print(json.dumps(report))
    else:
        for k, v in report.items():
            print(f"{k:<22}{v}")
    return 0

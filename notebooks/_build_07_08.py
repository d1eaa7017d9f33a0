"""Generate notebooks 07 (at scale, GPU) and 08 (beyond the paper): `python notebooks/_build_07_08.py`.

Same conventions as `_build.py` (whose helpers it uses): a parameters cell after the imports, the
fast/smoke budgets in metadata["cramlab"], a recap and check_* exercises at the end, figures recorded with
`Recorder(record_path)`. Both notebooks run on CPU with the embedded model in fast mode (CI) and on a GPU
with the bigger defaults of their parameters cell.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _build import RUN_NOTE, build, code, header, md, params, solution  # noqa: E402

# ----------------------------------------------------------------------------------------------------------
# 07 at scale
# ----------------------------------------------------------------------------------------------------------

NB07 = dict(
    fast={"lengths": [6, 10], "n_texts": 2, "layouts": ["sink-first"], "protocols": ["pc"], "max_steps": 100,
          "lr": 0.1, "progressive_max_tokens": 12, "progressive_step_tokens": 6, "progressive_max_steps": 80,
          "out": ""},
    smoke={"models": ["tiny-llama"], "lengths": [4, 6], "n_texts": 2, "layouts": ["sink-first"], "protocols": ["pc"],
           "max_steps": 3, "progressive_max_tokens": 6, "progressive_step_tokens": 2, "progressive_max_steps": 3,
           "out": ""},
    cells=[
        header("07", "At scale: the paper's protocol on a GPU", 3, "full: not for a CPU / fast: 66 s (embedded model)",
               "10-60 minutes at the default size", "04",
               ["run the paper's length grid over many texts, both layouts and both protocols, as a resumable sweep",
                "read our Table 1 beside the paper's (Max, gain, information gain, capacity utilisation)",
                "measure how far progressive cramming goes, mean +- std over texts, beside the follow-up paper",
                "split a sweep over several GPUs with torchrun"]),
        code("""
        import tempfile
        from pathlib import Path

        import torch

        from cramlab import exercises, plots, widgets
        from cramlab.models import hub_reachable, load_model
        from cramlab.notebook_runner import Recorder
        from cramlab.paper import PROGRESSIVE_TOKENS, published
        from cramlab.search import progressive
        from cramlab.sweep import format_report, length_records, n_jobs, plan, report, run_sweep, validate_config
        from cramlab.sweep import write_csv
        from cramlab.texts import get_texts
        """),
        RUN_NOTE,
        params("""
        models = ["smollm2-135m"]                 # the first one is the widget's default; more run one after another
        source = "unseen"                         # "unseen" (bundled passages) or "random"
        lengths = [16, 32, 48, 64, 96, 128]       # the grid (the paper: 8, 16, 32, 64, 96, 128, ...)
        n_texts = 32                              # texts per length (the paper used 50)
        layouts = ["sink-first", "mem-first"]     # mem-first is the paper's layout
        protocols = ["pc", "hc"]                  # pc scores all N tokens, hc (the authors' code) N-1
        n_mem = 1
        max_steps = 2000                          # per text and length (the paper: up to 5000)
        lr = 1e-2                                 # the paper's AdamW learning rate
        batch_size = 64                           # texts crammed together (same length and layout)
        dtype = None                              # None: bfloat16 on a GPU, float32 on a CPU
        progressive_max_tokens = 160              # progressive cramming: the cap
        progressive_step_tokens = 1               # grow by this many tokens (the follow-up: 1)
        progressive_max_steps = 500               # steps per length
        progressive_lr = 0.1                      # the follow-up's lr for Llama/SmolLM2
        out = "../runs/07_gpu_scale/results.jsonl"  # resumable (run again after a stop); empty: a temp file
        seed = 0
        fast = False
        record_path = ""
        """),
        md("## 1. The machine"),
        code("""
        record = Recorder(record_path)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda":
            props = torch.cuda.get_device_properties(0)
            print(f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, {torch.cuda.device_count()} device(s)")
        else:
            print(f"no GPU: running on the CPU with {torch.get_num_threads()} threads (use fast mode here)")
        hub = hub_reachable()
        print(f"Hugging Face hub reachable: {hub}")
        record("device", device)
        """),
        md("""
        ## 2. Choose the model

        With the hub reachable, any registry model can be picked (Pythia-160M ... Llama-3.1-8B; they download on
        first use). Offline, the embedded SmolLM2-135M is the one that works.
        """),
        code("""
        choices = widgets.CRAM_MODEL_CHOICES if hub else ("smollm2-135m",) + widgets.TINY
        picker = widgets.Controls(lambda model: widgets.describe_cram_choice(model, max(lengths), n_mem, source),
                                  [widgets.Field("model", models[0], "model", options=choices)],
                                  title="Model (change, then run the next cell)")
        picker.show();
        """),
        code("""
        chosen = picker.values()["model"]
        models = [chosen] + [m for m in models[1:] if m != chosen]
        if not hub:
            offline = [m for m in models if m not in choices]
            models = [m for m in models if m in choices]
            if offline:
                print(f"hub unreachable: skipping {offline}")
        print("models:", models)
        """),
        md("""
        ## 3. The paper's protocol, as a resumable sweep

        Every text is cut to every length of the grid and crammed **from scratch**; texts of one length are
        crammed together in batches. `run_sweep` appends one JSON line per finished (model, source, layout,
        protocol, n_mem, length, text) and skips what the file already holds: if the kernel dies or you stop
        it, run the cell again and it goes on where it stopped.
        """),
        code("""
        out = out or str(Path(tempfile.mkdtemp(prefix="cramlab07-")) / "results.jsonl")
        config = validate_config(dict(models=models, sources=[source], lengths=lengths, n_mem=[n_mem],
                                      layouts=layouts, protocols=protocols, n_texts=n_texts, batch_size=batch_size,
                                      max_steps=max_steps, lr=lr, dtype=dtype, seed=seed, device=device))
        print(f"{n_jobs(config)} jobs in {len(plan(config))} batches of up to {batch_size} texts -> {out}")
        """),
        code("""
        summary = run_sweep(config, out)
        record("sweep_seconds", summary.seconds)
        record("n_jobs", summary.n_jobs)
        """),
        md("""
        ## 4. Our Table 1 beside the paper's

        Max = the largest length whose mean accuracy is >= 0.99. Gain (tokens decoded beyond what the model
        guesses alone), information gain and capacity utilisation (gain / L_max) are averaged, as in the paper,
        over the texts that did **not** fit, pooled over lengths. The paper's figure is in brackets where the
        model is in its Table 1 (measured on PG-19 books; ours on unseen passages).
        """),
        code("""
        rows = report(out)
        print(format_report(rows))
        csv_path = str(Path(out).with_suffix(".csv"))
        write_csv(rows, csv_path)
        print(f"CSV: {csv_path}")
        record("max_tokens", {f"{r.model}/{r.layout}/{r.protocol}": r.max_tokens for r in rows})
        record("capacity_utilisation", {f"{r.model}/{r.layout}/{r.protocol}": r.capacity_utilisation for r in rows})
        """),
        code("""
        curves = length_records(out)
        for (model_name, src, layout, protocol, k), recs in curves.items():
            paper_max = published(model_name, source=src, n_mem=k).get("max_tokens")
            plots.accuracy_vs_length_chart(recs, title=f"{model_name}, {layout}, {protocol}: accuracy vs length",
                                           paper_max_tokens=paper_max).show()
        """),
        md("""
        ## 5. Progressive cramming (the follow-up)

        Tarasov et al. (ICML 2026) grow the target one token at a time and warm-start each length from the
        previous vector; a text stops at the first length that does not reach 100 %. The longest length reached,
        mean +- std over texts, is their measure (SmolLM2-135M: 38.5 +- 14.1 tokens). All texts still growing are
        crammed in one batch.
        """),
        code("""
        lm = load_model(models[0], device=device, dtype=dtype)
        texts = get_texts(lm.tokenizer, source, progressive_max_tokens, n_texts=n_texts, seed=seed)
        prog_rows = []
        for layout in layouts:
            for protocol in protocols:
                s = progressive(lm, texts, start=2 if progressive_step_tokens == 1 else progressive_step_tokens,
                                step_tokens=progressive_step_tokens, max_tokens=progressive_max_tokens,
                                max_steps=progressive_max_steps, lr=progressive_lr, layout=layout, protocol=protocol,
                                seed=seed)
                prog_rows.append(dict(layout=layout, protocol=protocol, texts=len(s.texts), mean_tokens=s.mean_tokens,
                                      std_tokens=s.std_tokens, longest=max(s.longest_tokens),
                                      greedy_exact=s.to_dict()["greedy_exact_fraction"],
                                      steps=s.to_dict()["total_steps"]))
                last = s
        print(plots.text_table(prog_rows, ["layout", "protocol", "texts", "mean_tokens", "std_tokens", "longest",
                                           "greedy_exact", "steps"],
                               formats={"mean_tokens": ".1f", "std_tokens": ".1f", "greedy_exact": ".2f"},
                               headers={"mean_tokens": "mean tokens", "std_tokens": "std",
                                        "greedy_exact": "greedy exact"}))
        theirs = PROGRESSIVE_TOKENS.get(lm.spec.name)
        if theirs and theirs.get("mean") is not None:
            print(f"\\nfollow-up paper, {lm.spec.name}: {theirs['mean']} +- {theirs['std']} tokens")
        record("progressive", prog_rows)
        """),
        md("How the settings differ from the follow-up's (printed from this run's parameters):"),
        code("""
        ours = dict(texts=f"{len(texts)} {source} texts", step=f"+{progressive_step_tokens} token(s)",
                    lr=progressive_lr, batch=f"{len(texts)} texts", layout=", ".join(layouts),
                    protocol=", ".join(protocols), budget=f"{progressive_max_steps} steps per length, "
                                                          f"cap {progressive_max_tokens} tokens")
        theirs = dict(texts="see the paper", step="+1 token", lr="0.1 (Llama, SmolLM2)", batch="10-25 texts",
                      layout="mem-first (no sink token)", protocol="pc (all N tokens scored)", budget="see the paper")
        print(plots.text_table([dict(setting=k, ours=str(ours[k]), follow_up=str(theirs[k])) for k in ours],
                               ["setting", "ours", "follow_up"]))
        """),
        md("""
        ## 6. Several GPUs

        The same sweep splits over the GPUs of one machine: every process loads the model once, takes every
        G-th text of each batch, writes its own part file, and process 0 merges them (after a barrier):

        ```
        torchrun --nproc-per-node=4 -m cramlab sweep sweep.yaml --out runs/results.jsonl
        cramlab report runs/results.jsonl --csv runs/table1.csv
        ```

        `sweep.yaml` holds the keys of `SweepConfig` (models, sources, lengths, n_mem, layouts, protocols, n_texts,
        batch_size, max_steps, lr, ...). Killing it, even with `kill -9`, loses nothing: run it again.

        ## Recap
        - The paper's Max comes from cramming every text at every length from scratch; a sweep does it in
          batches and writes each result as soon as it exists.
        - Our Table 1 puts Max, gain, information gain and utilisation beside the paper's, with the caveat of
          different texts (unseen passages, not PG-19) and, for SmolLM2, a model outside the paper.
        - Progressive cramming measures something else (how far a vector can be grown), reported as mean +- std.

        ## Exercises
        1. How many lines does the finished results file hold? Compute it from the configuration.
        """),
        code("""
        answer_1 = ...
        exercises.check_n_jobs(answer_1, config);
        """),
        md("2. Compute the capacity utilisation of the first row of our table from its other columns."),
        code("""
        row = rows[0]
        answer_2 = ...
        exercises.check_utilisation_of_row(answer_2, row);
        """),
        md("3. What is the mean longest length the last progressive run reached (`last`, a ProgressiveSummary)?"),
        code("""
        answer_3 = ...
        exercises.check_progressive_mean(answer_3, last);
        """),
        solution("""
        1. `answer_1 = len(models) * 1 * len(layouts) * len(protocols) * 1 * len(lengths) * n_texts`
           (one source, one n_mem), or `len(open(out).readlines())` once the sweep is done.
        2. `answer_2 = row.gain_tokens / row.capacity_tokens` (NaN when every text fit: no gain to average).
        3. `answer_3 = sum(t.longest_tokens for t in last.texts) / len(last.texts)`
        """),
    ])

# ----------------------------------------------------------------------------------------------------------
# 08 beyond the paper
# ----------------------------------------------------------------------------------------------------------

NB08 = dict(
    fast={"n_texts": 1, "step_tokens": 2, "max_tokens": 12, "max_steps": 80},
    smoke={"model": "tiny-llama", "n_texts": 1, "step_tokens": 2, "max_tokens": 6, "max_steps": 3},
    cells=[
        header("08", "Beyond the paper: growing a vector, attention sinks, the path it takes", 3,
               "full: not measured / fast: 48 s", "5-15 minutes at the default size", "03, 07",
               ["grow a vector token by token (progressive cramming) and see where it stops",
                "measure how much attention the text pays to the trained vector, layer by layer",
                "find how many directions the vector's path really uses (PCA)"]),
        code("""
        import plotly.graph_objects as go
        import torch

        from cramlab import exercises, plots
        from cramlab.attention import attention_shares
        from cramlab.models import load_model
        from cramlab.notebook_runner import Recorder
        from cramlab.paper import PROGRESSIVE_TOKENS
        from cramlab.search import progressive
        from cramlab.texts import get_texts
        from cramlab.trajectory import trajectory_pca
        """),
        RUN_NOTE,
        params("""
        model = "smollm2-135m"
        source = "unseen"
        n_texts = 4              # texts grown together (one batch)
        start = 2                # first length, in tokens
        step_tokens = 1          # grow by this many tokens (the follow-up: 1)
        max_tokens = 96          # stop here even if it still fits
        max_steps = 300          # optimisation steps per length
        lr = 0.1                 # the follow-up's lr for SmolLM2
        layout = "sink-first"
        seed = 0
        fast = False
        record_path = ""
        """),
        md("""
        ## 1. Progressive cramming

        Tarasov et al. (ICML 2026) do not cram each length from scratch. They grow the target: fit the first
        token, then the first two starting from that vector, and so on; a text stops at the first length whose
        accuracy does not reach 100 %. Each length starts where the last one ended, so most lengths take a few
        steps. (Vectors that fit N tokens fit every shorter prefix too: the model is causal.)
        """),
        code("""
        record = Recorder(record_path)
        lm = load_model(model)
        texts = get_texts(lm.tokenizer, source, max_tokens, n_texts=n_texts, seed=seed)

        def show(n_tokens, results):
            if (n_tokens - start) % 8 < step_tokens or n_tokens == max_tokens:
                print(f"N={n_tokens:>4}: {sum(r.teacher_forced_accuracy == 1.0 for r in results)}/{len(results)} "
                      f"still fit, steps {[r.steps for r in results]}")

        grown = progressive(lm, texts, start=start, step_tokens=step_tokens, max_tokens=max_tokens,
                            max_steps=max_steps, lr=lr, layout=layout, seed=seed, keep_trajectory=True, callback=show)
        """),
        code("""
        print(plots.text_table([dict(text=t.text_id, longest=t.longest_tokens, stopped_at=t.failed_tokens,
                                     steps=t.total_steps, greedy_exact=t.greedy_exact) for t in grown.texts],
                               ["text", "longest", "stopped_at", "steps", "greedy_exact"]))
        print(f"\\nmax tokens: {grown.mean_tokens:.1f} +- {grown.std_tokens:.1f} over {len(grown.texts)} text(s)")
        theirs = PROGRESSIVE_TOKENS.get(lm.spec.name)
        if theirs and theirs.get("mean") is not None:
            print(f"follow-up paper, {lm.spec.name}: {theirs['mean']} +- {theirs['std']} tokens")
        record("mean_tokens", grown.mean_tokens)
        record("longest_tokens", grown.longest_tokens)
        """),
        md("Steps spent at each length: most lengths are cheap; the last ones before a stop are not."),
        code("""
        fig = go.Figure([go.Scatter(x=[r["n_tokens"] for r in t.records], y=[r["steps"] for r in t.records],
                                    mode="lines+markers", name=t.text_id) for t in grown.texts])
        fig.update_layout(title="Progressive cramming: steps per length", xaxis_title="length N (tokens)",
                          yaxis_title="steps", template="plotly_white")
        """),
        md("""
        ## 2. The vector as an attention sink

        The follow-up found that the [mem] position draws 20-60 % of the attention in some layers. Here: for
        each layer, the share of attention the text positions give to the sink token, to the trained vector and
        to the text itself (averaged over heads and positions). For comparison, a random vector of the same
        scale as the start of training.
        """),
        code("""
        best = max(grown.texts, key=lambda t: t.longest_tokens)
        ids = next(x for x in texts if x.text_id == best.text_id).token_ids[:max(best.longest_tokens, 2)]
        vector = best.vectors if best.vectors is not None else torch.zeros(1, lm.spec.d)
        random_vector = torch.randn(vector.shape, generator=torch.Generator().manual_seed(seed)) * \\
            lm.model.get_input_embeddings().weight.float().std().item()
        crammed = attention_shares(lm, vector, ids, layout=layout)
        baseline = attention_shares(lm, random_vector, ids, layout=layout)
        rows = [dict(layer=i, sink=crammed.sink_share[i], vector=crammed.mem_share[i], text=crammed.text_share[i],
                     random_vector=baseline.mem_share[i]) for i in range(crammed.n_layers)]
        print(plots.text_table(rows, ["layer", "sink", "vector", "text", "random_vector"],
                               formats={k: ".3f" for k in ("sink", "vector", "text", "random_vector")},
                               headers={"vector": "trained vector", "random_vector": "random vector"}))
        peak = crammed.peak_mem_layer()
        print(f"\\npeak: layer {peak}, {crammed.mem_share[peak]:.1%} of the attention on the trained vector "
              f"(a random vector: {baseline.mem_share[peak]:.1%})")
        record("peak_mem_layer", peak)
        record("peak_mem_share", crammed.mem_share[peak])
        """),
        code("""
        fig = go.Figure([go.Bar(x=list(range(crammed.n_layers)), y=crammed.mem_share, name="trained vector"),
                         go.Bar(x=list(range(crammed.n_layers)), y=baseline.mem_share, name="random vector"),
                         go.Scatter(x=list(range(crammed.n_layers)), y=crammed.sink_share, name="sink token")])
        fig.update_layout(title="Attention on the prefix, per layer", xaxis_title="layer",
                          yaxis_title="share of attention", template="plotly_white")
        """),
        md("""
        In the `sink-first` layout the fixed token at position 0 already plays the sink; compare with
        `layout = "mem-first"` (the paper's layout) in the parameters cell, where the vector itself sits at
        position 0.

        ## 3. The path of the vector

        `keep_trajectory=True` kept the vector after every length. Stacked, they are a path in a space of
        d dimensions; a PCA says how many directions it really uses. (T points span at most T-1 directions:
        a short run cannot show the follow-up's 30-100 components for 99 %.)
        """),
        code("""
        if len(best.trajectory) >= 2:
            pca = trajectory_pca(best.trajectory)
            k99 = pca.n_components(0.99)
            print(f"{pca.n_points} vectors of {pca.dim} numbers; {k99} component(s) hold 99 % of the variance, "
                  f"the first holds {pca.explained_variance_ratio[0]:.1%}")
            record("n_components_99", k99)
        else:
            pca = None
            print("the text did not grow past its first length: no path to analyse (try more steps or a higher lr)")
        """),
        code("""
        if pca is not None:
            fig = go.Figure(go.Scatter(x=list(range(1, len(pca.cumulative) + 1)), y=pca.cumulative,
                                       mode="lines+markers"))
            fig.add_hline(y=0.99, line_dash="dash", annotation_text="99 %")
            fig.update_layout(title="Cumulative explained variance of the path", xaxis_title="components",
                              yaxis_title="share of variance", template="plotly_white")
            fig.show()
        """),
        md("""
        ## Recap
        - Growing a vector token by token, each length warm-started from the last, is cheap per length and
          stops at the first length it cannot fit: a per-text measure, reported as mean +- std.
        - The trained vector is not read like a token: some layers pay it a large share of their attention.
        - The vector moves in few directions while it grows.

        ## Exercises
        1. Vectors fit the first N tokens of a text. Do they also fit its first M < N tokens without any more
           training? (`"yes"` or `"no"`)
        """),
        code("""
        answer_1 = ...
        exercises.check_prefix_fits(answer_1);
        """),
        md("2. The mean longest length reached over the texts of `grown`?"),
        code("""
        answer_2 = ...
        exercises.check_progressive_mean(answer_2, grown);
        """),
        md("3. How many components hold 99 % of the variance of the path (`pca`)?"),
        code("""
        answer_3 = ...
        if pca is not None:
            exercises.check_components(answer_3, pca);
        """),
        solution("""
        1. `"yes"`: a causal model's predictions for the first M tokens never see the later ones.
        2. `answer_2 = sum(t.longest_tokens for t in grown.texts) / len(grown.texts)`
        3. `answer_3 = pca.n_components(0.99)`, or count the entries of `pca.cumulative` below 0.99, plus one.
        """),
    ])

NOTEBOOKS = {"07_gpu_scale": NB07, "08_beyond": NB08}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="notebook stems to build")
    args = ap.parse_args(argv)
    for stem, spec in NOTEBOOKS.items():
        if args.only and not any(stem.startswith(o) for o in args.only):
            continue
        path = HERE / f"{stem}.ipynb"
        nb = build(stem, spec)
        nbformat.validate(nb)
        nbformat.write(nb, path)
        print(f"wrote {path.relative_to(HERE.parent)} ({len(nb.cells)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""ipywidgets controls for the notebooks: text length, model, text source, number of vectors, dtype.

The handlers are plain functions of plain values (`describe_capacity`, `describe_cram_choice`); a
`Controls` object only wires widgets to one of them. Without a front end (papermill, a terminal) or
without ipywidgets, `Controls.show()` still prints the handler's answer for the current values, and
`Controls.values()` returns them, so a notebook reads its settings the same way in both cases.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable

from cramlab import capacity as cap
from cramlab.errors import CramlabError

EMBEDDED = "smollm2-135m"
TINY = ("tiny-llama", "tiny-gptneox")
MODEL_CHOICES = tuple(cap.known_model_names())
CRAM_MODEL_CHOICES = (EMBEDDED,) + tuple(m for m in MODEL_CHOICES if m != EMBEDDED) + TINY
DTYPE_CHOICES = ("float32", "bfloat16", "float16", "float8")
SOURCE_CHOICES = ("unseen", "random")


# --- handlers: plain functions ------------------------------------------------------------------------------

def capacity_summary(model: str, dtype: str = "bfloat16", n_mem: int = 1) -> dict:
    """The capacity of `n_mem` vectors of `model` when each value holds the bits of `dtype`."""
    bits = cap.bits_per_value(dtype)
    c = cap.capacity_of(model, bits=bits, n_mem=int(n_mem))
    return c.to_dict() | {"dtype": dtype, "bits_per_token": cap.bits_per_token(c.vocab_size)}


def describe_capacity(model: str, dtype: str = "bfloat16", n_mem: int = 1) -> str:
    try:
        s = capacity_summary(model, dtype, n_mem)
    except CramlabError as exc:
        return f"cannot compute: {exc}"
    return (f"{n_mem} vector(s) of {model}: {s['d']} values x {s['bits_per_value']} bits ({dtype}) = "
            f"{s['capacity_bits']:,} bits; one token of |V|={s['vocab_size']:,} needs {s['bits_per_token']:.2f} bits "
            f"-> at most {s['capacity_tokens']:,} tokens")


def describe_cram_choice(model: str, n_tokens: int, n_mem: int = 1, source: str = "unseen",
                         dtype: str = "bfloat16") -> str:
    """What a cramming run with these settings asks of the vectors, compared with their capacity."""
    if model in TINY:
        return (f"{model}: a tiny random-weight test model. It checks the mechanics in seconds but cannot be "
                f"steered: do not expect it to converge")
    try:
        s = capacity_summary(model, dtype, n_mem)
    except CramlabError as exc:
        return f"cannot compute: {exc}"
    share = int(n_tokens) / s["capacity_tokens_exact"]
    where = "" if model == EMBEDDED else " (downloaded from the hub on first use)"
    return (f"{n_tokens} {source} tokens into {n_mem} vector(s) of {model}{where}: {share:.1%} of the theoretical "
            f"capacity of {s['capacity_tokens']} tokens")


# --- widgets -----------------------------------------------------------------------------------------------------

@dataclass
class Field:
    """One control: a dropdown when `options` is given, else an integer slider from `low` to `high`."""
    name: str
    value: Any
    description: str
    options: tuple | None = None
    low: int = 1
    high: int = 100
    step: int = 1

    def make(self):
        import ipywidgets as w
        style = {"description_width": "initial"}
        if self.options is not None:
            options = tuple(self.options) if self.value in self.options else (self.value,) + tuple(self.options)
            return w.Dropdown(options=options, value=self.value, description=self.description, style=style)
        low, high = min(self.low, int(self.value)), max(self.high, int(self.value))
        return w.IntSlider(value=int(self.value), min=low, max=high, step=self.step, description=self.description,
                           style=style, continuous_update=False)


class Controls:
    """Widgets for `fields`, a line of text from `handler(**values)` that follows them."""

    def __init__(self, handler: Callable[..., str], fields: list[Field], title: str = "",
                 figure: Any = None, on_change: Callable[..., None] | None = None):
        self.handler = handler
        self.fields = fields
        self.title = title
        self.figure = figure              # a plotly figure shown under the controls, redrawn by on_change
        self.on_change = on_change        # on_change(figure, **values), called on every change
        self._values = {f.name: f.value for f in fields}
        self.widgets: dict[str, Any] = {}
        self.output = None
        self.box = None
        try:
            import ipywidgets as w
            self.widgets = {f.name: f.make() for f in fields}
            self.output = w.HTML(value=self.text())
            for widget in self.widgets.values():
                widget.observe(self.refresh, names="value")
            parts = ([w.HTML(f"<b>{title}</b>")] if title else []) + list(self.widgets.values()) + [self.output]
            if isinstance(figure, w.DOMWidget):   # a FigureWidget: part of the box, redrawn in place
                parts.append(figure)
            self.box = w.VBox(parts)
        except ImportError:  # no ipywidgets: plain values, printed text
            self.widgets = {}

    def values(self) -> dict:
        """The current values (from the widgets when there are any)."""
        if self.widgets:
            self._values = {name: widget.value for name, widget in self.widgets.items()}
        return dict(self._values)

    def set(self, **values) -> str:
        """Change values (and the widgets); returns the new text."""
        unknown = set(values) - set(self._values)
        if unknown:
            raise KeyError(f"unknown control(s) {sorted(unknown)}; have {sorted(self._values)}")
        self._values.update(values)
        for name, value in values.items():
            if name in self.widgets:
                self.widgets[name].value = value
        return self.refresh()

    def text(self) -> str:
        return self.handler(**self.values())

    def refresh(self, _change=None) -> str:
        text = self.text()
        if self.output is not None:
            self.output.value = text
        if self.figure is not None and self.on_change is not None:
            self.on_change(self.figure, **self.values())
        return text

    def show(self) -> str:
        """Display the widgets (where there is a front end) and print the current answer (always)."""
        if self.box is not None:
            try:
                from IPython.display import display
                display(self.box)
            except ImportError:
                pass
        text = self.text()
        print(text)
        return text


def capacity_chart(model: str, dtype: str = "bfloat16", n_mem: int = 1):
    """Every registered model's capacity for `n_mem` vectors of `dtype`, `model` outlined."""
    from cramlab.lab.plots import capacity_bar_chart
    return capacity_bar_chart(cap.capacity_table(bits=cap.bits_per_value(dtype), n_mem=int(n_mem)),
                              highlight=model)


def update_capacity_chart(figure, model: str, dtype: str = "bfloat16", n_mem: int = 1) -> None:
    """Redraw a `capacity_chart` figure for another dtype / number of vectors / highlighted model."""
    try:
        new = capacity_chart(model, dtype, n_mem)
    except CramlabError:
        return                            # the text line already says what is wrong
    batch = figure.batch_update() if hasattr(figure, "batch_update") else contextlib.nullcontext()
    with batch:
        for trace, fresh in zip(figure.data, new.data):
            trace.y, trace.text = fresh.y, fresh.text
            trace.marker.line.width = fresh.marker.line.width
        figure.layout.title.text = new.layout.title.text


def capacity_controls(model: str = EMBEDDED, dtype: str = "bfloat16", n_mem: int = 1,
                      chart: bool = False) -> Controls:
    """Model, dtype and number of vectors -> theoretical capacity (notebooks 01 and 06).

    `chart=True` adds a bar chart of every registered model's capacity (`controls.figure`, a plotly
    FigureWidget where a front end can show one) that the controls redraw: bits per value and number of
    vectors change the bars, the chosen model is outlined.
    """
    figure = None
    if chart:
        from cramlab.lab.plots import _figure_widget
        figure = _figure_widget(capacity_chart(model, dtype, n_mem))
    return Controls(describe_capacity, [
        Field("model", model, "model", options=MODEL_CHOICES),
        Field("dtype", dtype, "dtype", options=DTYPE_CHOICES),
        Field("n_mem", n_mem, "vectors n_mem", low=1, high=16),
    ], title="Capacity explorer", figure=figure, on_change=update_capacity_chart if chart else None)


def cram_controls(model: str = EMBEDDED, n_tokens: int = 16, source: str = "unseen", n_mem: int = 1,
                  dtype: str = "bfloat16") -> Controls:
    """Text length, model, text source, number of vectors (notebook 03): change them, then run the next cell."""
    return Controls(describe_cram_choice, [
        Field("model", model, "model", options=CRAM_MODEL_CHOICES),
        Field("n_tokens", n_tokens, "text length (tokens)", low=4, high=128, step=4),
        Field("source", source, "text source", options=SOURCE_CHOICES),
        Field("n_mem", n_mem, "vectors n_mem", low=1, high=8),
        Field("dtype", dtype, "dtype (bits counted)", options=DTYPE_CHOICES),
    ], title="What to cram (change, then run the next cell)")


# --- your own text (notebook 03) ----------------------------------------------------------------------------

OWN_TEXT_MAX_TOKENS = 32      # a CPU crams this many tokens in a minute or two at lr 0.1


def cram_own_text(lm, text: str, *, max_steps: int = 300, lr: float = 0.1, seed: int = 0,
                  max_tokens: int = OWN_TEXT_MAX_TOKENS, progress: bool = True) -> dict:
    """Cram the learner's sentence (its first `max_tokens` tokens) into one vector, decode it back, and
    put its bytes beside the vector's: plain figures, printed by `OwnText` and recorded by notebook 03."""
    from cramlab.engine.plain import cram
    from cramlab.models.texts import encode, first_tokens
    from cramlab.poc.run import text_bytes, token_id_bytes, vector_bytes
    n_tokens = min(len(encode(lm.tokenizer, text)) if isinstance(text, str) else 0, max_tokens)
    item = first_tokens(lm.tokenizer, text, max(n_tokens, 2), text_id="your-text")
    r = cram(lm, [item], max_steps=max_steps, lr=lr, seed=seed, progress=progress)[0]   # a bar: minutes on a CPU
    return {"n_tokens": item.n_tokens, "text": lm.tokenizer.decode(item.token_ids), "decoded": r.decoded_text,
            "greedy_exact": r.greedy_exact, "steps": r.steps, "accuracy": r.teacher_forced_accuracy,
            "utf8_bytes": text_bytes(lm.tokenizer.decode(item.token_ids))["utf8"],
            "token_id_bytes": token_id_bytes(item.n_tokens, lm.spec.vocab_size),
            "vector_bytes_bf16": vector_bytes(1, lm.spec.d, "bfloat16"),
            "vector_bytes_fp32": vector_bytes(1, lm.spec.d, "float32")}


def describe_own_text(figures: dict) -> str:
    f = figures
    return (f"{f['n_tokens']} tokens: {f['text']!r}\n"
            f"decoded back after {f['steps']} steps (teacher-forced accuracy {f['accuracy']:.3f}): "
            f"{f['decoded']!r}\ngreedy decoding gives your text back exactly: {f['greedy_exact']}\n"
            f"bytes: your text {f['utf8_bytes']} (UTF-8), its token ids {f['token_id_bytes']}, "
            f"one vector {f['vector_bytes_bf16']} (bfloat16) or {f['vector_bytes_fp32']} (float32)")


class OwnText:
    """A text box and a button: the button crams what is typed (`cram_own_text`) and prints the result.
    Without a front end (papermill) call `run()` with the default text; it does what the button does."""

    def __init__(self, lm, text: str, **cram_options):
        self.lm, self.default, self.options = lm, text, cram_options
        self.box = self.text_box = self.output = None
        try:
            import ipywidgets as w
            self.text_box = w.Textarea(value=text, description="your text", layout=w.Layout(width="90%"))
            button = w.Button(description="cram it and decode it back")
            self.output = w.Output()
            button.on_click(lambda _b: self._clicked())
            self.box = w.VBox([self.text_box, button, self.output])
        except ImportError:
            pass

    def _clicked(self):
        with self.output:
            self.output.clear_output()
            try:
                self.run(self.text_box.value)
            except CramlabError as exc:      # an empty box, say: one line, the widget stays usable
                print(f"error: {exc}")

    def run(self, text: str | None = None) -> dict:
        figures = cram_own_text(self.lm, self.default if text is None else text, **self.options)
        print(describe_own_text(figures))
        return figures

    def show(self):
        if self.box is not None:
            with contextlib.suppress(ImportError):
                from IPython.display import display
                display(self.box)

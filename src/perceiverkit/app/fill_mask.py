"""The fill-mask tab: text with ``[MASK]``s in, the completed text and each mask's top bytes with their scores out."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..pipelines import pipeline
from .errors import require, shown_in_page
from .models import TabModel

# Short texts: the shipped model reads 32-byte windows. The last one it gets wrong (it writes "warks").
EXAMPLES = ("the capital of Fr[MASK]nce", "a computer prog[MASK]am", "the United St[MASK]tes",
            "a person who w[MASK][MASK]ks hard")


def fill_mask(fill: Any, text: str, top_k: int) -> tuple[str, str]:  # Any: the FillMask pipeline
    """The text with every mask filled by its best byte, and a Markdown table of each mask's ``top_k`` bytes."""
    text = require(text, "text", "type some, with a [MASK] for each byte to fill in")
    per_mask = fill.predict(text, top_k=int(top_k))[0]
    rows = ["| mask | rank | byte | score |", "|---:|---:|:---|---:|"]
    for m, candidates in enumerate(per_mask, start=1):
        rows += [f"| {m} | {rank} | `{c['token_str']!r}` | {c['score']:.1%} |"
                 for rank, c in enumerate(candidates, start=1)]
    return per_mask[0][0]["sequence"], "\n".join(rows)


def build_tab(tab: TabModel) -> None:
    fill = pipeline("fill-mask", tab.model)
    limit = tab.model.config.max_position_embeddings - 2
    gr.Markdown(f"Each `[MASK]` stands for one byte; write `[MASK][MASK]` for two. This model reads at most "
                f"{limit} bytes. {tab.describe()}")
    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label="text with [MASK]s", value=EXAMPLES[0], elem_id="fill-mask-text")
            top_k = gr.Slider(1, 10, value=5, step=1, label="bytes to show per mask")
            button = gr.Button("Fill in", variant="primary", elem_id="fill-mask-run")
            gr.Examples([[e] for e in EXAMPLES], inputs=[text])
        with gr.Column():
            completed = gr.Textbox(label="completed text", interactive=False, elem_id="fill-mask-completed")
            table = gr.Markdown(elem_id="fill-mask-table")
    button.click(shown_in_page(lambda t, k: fill_mask(fill, t, k)), [text, top_k], [completed, table])


__all__ = ["build_tab", "fill_mask"]

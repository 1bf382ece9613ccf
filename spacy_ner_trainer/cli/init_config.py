"""`init-config`: a complete spaCy config that uses this package's registered functions."""
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ..init_config import make_config
from ..save import write_atomically
from ._util import Lang, app, fails_cleanly


@app.command("init-config")
@fails_cleanly
def init_config_cli(
    output: Path = typer.Argument(..., help="The config file to write"),
    train_path: Path = typer.Option(..., "--train", help="Training data"),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Dev data (default: the training data, which makes model-best meaningless: give it)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Base pipeline: ner sourced from it, the rest frozen"),
    lang: Lang = "en",
    gpu: bool = typer.Option(False, "--gpu", help="A transformer config for a GPU (needs the [transformers] extra)"),
    transformer: Optional[str] = typer.Option(None, "--transformer", help="With --gpu: a local Hugging Face BERT folder, or roberta-base (default), bert-base-cased or bert-base-uncased"),
    keep_original: Optional[bool] = typer.Option(None, "--keep-original/--no-keep-original", help="With --model: keep its ner frozen and train a copy, 'ner_new', placed before it (default: when the ner knows labels the data lacks); --no-keep-original fine-tunes the ner itself with rehearsal"),
) -> None:
    """Write a complete spaCy config using this package's reader, labels reader, batcher and
    verify callback; `python -m spacy train OUTPUT` runs it unchanged."""
    config, notes = make_config(train_path, dev, model=model, lang=lang, gpu=gpu, transformer=transformer,
                                keep_original=keep_original)
    for note in notes:
        msg.warn(note)
    write_atomically(output, config.to_disk)
    msg.good(f"Wrote {output}", f"Train with: python -m spacy train {output} --output training/")

"""Convert any data the reader reads into a `.spacy` DocBin or span JSONL."""
from pathlib import Path
from typing import Iterable, Optional, Union

import srsly
from spacy.tokens import DocBin
from spacy.training import Example

from .errors import UsageError
from .save import write_atomically

TARGETS = ("spacy", "jsonl")


def target_for(output: Path, to: Optional[str]) -> str:
    """The target format: given, or from the output's suffix."""
    to = to or {".spacy": "spacy", ".jsonl": "jsonl"}.get(output.suffix.lower())
    if to not in TARGETS:
        raise UsageError(f"{output}: say --to spacy or --to jsonl (or name the output .spacy or .jsonl)")
    return to


def convert_examples(examples: Iterable[Example], output: Union[str, Path], to: Optional[str] = None) -> int:
    """Write the gold side of `examples` to `output`, atomically. Returns how many were written.

    Args:
        examples (Iterable[Example]): e.g. from NerCorpus.
        output (Union[str, Path]): the file to write.
        to (Optional[str]): "spacy" or "jsonl"; default from the suffix.
    RETURNS (int): the number of examples written.
    """
    output = Path(output)
    to = target_for(output, to)
    count = 0

    def write_docbin(path: Path) -> None:
        nonlocal count
        doc_bin = DocBin(attrs=["ORTH", "ENT_IOB", "ENT_TYPE"], store_user_data=False)
        for eg in examples:
            doc_bin.add(eg.reference)
            count += 1
        doc_bin.to_disk(path)

    def records() -> Iterable[dict]:
        nonlocal count
        for eg in examples:
            count += 1
            doc = eg.reference
            yield {"text": doc.text, "spans": [
                {"start": e.start_char, "end": e.end_char, "label": e.label_} for e in doc.ents]}

    write_atomically(output, write_docbin if to == "spacy" else lambda p: srsly.write_jsonl(p, records()))
    return count

"""Writing outputs so that a failure never leaves a half-written file and nothing of a user's is replaced."""
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, List, Union

import srsly
from spacy.language import Language

from .errors import UsageError

# Written into every output directory this package makes: what it wrote there. A directory is
# replaced or written into only when everything in it is listed here.
MARKER = ".spacy-ner-trainer.json"
_TMP = ".tmp-"  # write_atomically's temporary names: ".<name>.tmp-XXXX"


def claim_output_dir(output: Union[str, Path], entries: Iterable[str]) -> Path:
    """Make `output` this package's output directory, before any work: it must be new, empty,
    or an earlier output of this package (everything in it listed in its marker). Anything
    else raises UsageError naming the directory and what is in it, and nothing changes.

    Args:
        output (Union[str, Path]): the directory.
        entries (Iterable[str]): the names this run will write into it.
    RETURNS (Path): the directory.
    """
    output = Path(output)
    if output.is_symlink():
        raise UsageError(f"{output}: the output is a symbolic link (to {os.readlink(output)}); give a real "
                         "directory, so that nothing it points to is replaced")
    if output.exists() and not output.is_dir():
        raise UsageError(f"{output}: the output path is a file; give a new or empty directory")
    if output.exists():
        foreign = _foreign_entries(output)
        if foreign:
            shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
            raise UsageError(f"{output}: the directory holds files this package did not write ({shown}); "
                             "give a new or empty directory, or an earlier --output of this package")
    owned = sorted(set(entries) | set(_marked(output)))
    output.mkdir(parents=True, exist_ok=True)
    write_atomically(output / MARKER, lambda p: srsly.write_json(p, {"written_by": "spacy-ner-trainer",
                                                                     "entries": owned}))
    return output


def _ours(marker: Path) -> bool:
    try:
        content = srsly.read_json(marker)
    except ValueError:
        return False
    return isinstance(content, dict) and content.get("written_by") == "spacy-ner-trainer"


def _marked(output: Path) -> List[str]:
    marker = output / MARKER
    if not marker.is_file() or not _ours(marker):
        return []
    entries = srsly.read_json(marker).get("entries", [])
    return [e for e in entries if isinstance(e, str)] if isinstance(entries, list) else []


def _foreign_entries(output: Path) -> List[str]:
    """What is in `output` that this package's marker does not list."""
    marked = set(_marked(output))
    if (output / MARKER).is_file() and _ours(output / MARKER):
        marked.add(MARKER)
    foreign = []
    for entry in sorted(os.listdir(output)):
        if entry in marked:
            continue
        if entry.startswith(".") and _TMP in entry and entry[1:].split(_TMP)[0] in marked:
            continue  # a temporary copy a killed run left behind
        foreign.append(entry + ("/" if (output / entry).is_dir() else ""))
    return foreign


def write_atomically(output: Union[str, Path], write: Callable[[Path], Any]) -> Path:
    """Run `write` on a temporary path beside `output`, then rename it into place: an existing
    `output` is replaced only once the new one is complete."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}{_TMP}", dir=output.parent))
    try:
        write(tmp / "new")
        if output.is_dir() and not output.is_symlink():
            os.replace(output, tmp / "old")  # a directory cannot be replaced in one rename
            try:
                os.replace(tmp / "new", output)
            except BaseException:
                os.replace(tmp / "old", output)
                raise
        else:
            os.replace(tmp / "new", output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output


def save_pipeline(nlp: Language, output: Union[str, Path]) -> Path:
    """`nlp.to_disk(output)`, written to a temporary directory and renamed into place."""
    return write_atomically(output, nlp.to_disk)

"""Saving a pipeline so that a failure never leaves a half-written or lost model."""
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Union

from spacy.language import Language


def check_output_dir(output: Union[str, Path]) -> Path:
    """Fail before any work when the output path can never hold a pipeline, or holds something
    that replacing it would destroy."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ValueError(f"{output}: the output path is a file; give a directory")
    if output.resolve() == Path.cwd().resolve():
        raise ValueError(f"{output}: the output is the current directory; give a new or model directory")
    if output.is_dir() and any(output.iterdir()) and not (output / "config.cfg").exists():
        raise ValueError(f"{output}: the directory holds files and no spaCy pipeline, and saving "
                         "would replace them; give a new, empty or model directory")
    return output


def write_atomically(output: Union[str, Path], write: Callable[[Path], None]) -> Path:
    """Run `write` on a temporary path beside `output`, then rename it into place: an existing
    `output` is replaced only once the new one is complete."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    try:
        write(tmp / "new")
        if output.is_dir():
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
    return write_atomically(check_output_dir(output), nlp.to_disk)

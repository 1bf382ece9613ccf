"""Writing outputs so that a failure never leaves a half-written file and nothing of a user's is replaced."""
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

import srsly
from spacy.language import Language

from .errors import UsageError

# Written into every output directory this package makes: every file it wrote there. The
# directory is written into again only when everything in it is listed here.
MARKER = ".spacy-ner-trainer.json"
_TMP = ".tmp-"  # write_atomically's temporary names: ".<name>.tmp-XXXX"


class OutputDir:
    """An output directory of this package's, claimed before any work.

    Args:
        path (Union[str, Path]): the directory: new, empty, or an earlier output of this
            package (everything in it listed in its marker). Anything else raises UsageError
            naming the directory and what is in it, and nothing changes.
    """

    def __init__(self, path: Union[str, Path], entries: Iterable[str] = ()):
        self.path = Path(path)
        if self.path.is_symlink():
            raise UsageError(f"{self.path}: the output is a symbolic link (to {os.readlink(self.path)}); give a "
                             "real directory, so that nothing it points to is replaced")
        if self.path.exists() and not self.path.is_dir():
            raise UsageError(f"{self.path}: the output path is a file; give a new or empty directory")
        self.files = _marked(self.path)
        if self.path.exists():
            foreign = self.foreign()
            if foreign:
                shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
                raise UsageError(f"{self.path}: the directory holds files this package did not write ({shown}); "
                                 "give a new or empty directory, or an earlier --output of this package")
            for name in list(self.files):
                recover(self.path / name)
        # Named before anything is written, so that a run killed mid-write leaves nothing unlisted.
        for name in entries:
            self.files.setdefault(name, None)
        self._write_marker()

    def foreign(self) -> List[str]:
        """What is in the directory that the marker does not list, files inside its entries included."""
        foreign = []
        for entry in sorted(os.listdir(self.path)):
            path = self.path / entry
            if entry == MARKER and _ours(path):
                continue
            if entry.startswith(".") and _TMP in entry and entry[1:].split(_TMP)[0] in self.files:
                continue  # a temporary copy a killed run left behind
            if entry not in self.files or path.is_symlink():
                foreign.append(entry + ("/" if path.is_dir() else ""))
            elif path.is_dir() and self.files[entry] is not None:
                listed = set(self.files[entry] or [])
                foreign += [f"{entry}/{f}" for f in _files(path) if f not in listed]
        return foreign

    def write(self, name: str, write: Callable[[Path], Any]) -> Path:
        """`write_atomically` into the directory, recording every file written in the marker."""
        target = write_atomically(self.path / name, write)
        self.files[name] = _files(target) if target.is_dir() else []
        self._write_marker()
        return target

    def _write_marker(self) -> None:
        write_atomically(self.path / MARKER, lambda p: srsly.write_json(
            p, {"written_by": "spacy-ner-trainer", "files": self.files}))


def _files(directory: Path) -> List[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if not p.is_dir())


def _ours(marker: Path) -> bool:
    try:
        content = srsly.read_json(marker)
    except ValueError:
        return False
    return isinstance(content, dict) and content.get("written_by") == "spacy-ner-trainer"


def _marked(output: Path) -> Dict[str, Optional[List[str]]]:
    """name -> the files written inside it (None: named, its files not recorded yet)."""
    marker = output / MARKER
    if not marker.is_file() or not _ours(marker):
        return {}
    files = srsly.read_json(marker).get("files", {})
    if not isinstance(files, dict):
        return {}
    return {k: (list(v) if isinstance(v, list) else None) for k, v in files.items()}


def recover(output: Path) -> Optional[Path]:
    """Finish a directory replacement that a kill interrupted between write_atomically's two
    renames: the old directory was moved aside and the complete new one not yet moved in."""
    if output.exists():
        return output
    for tmp in sorted(output.parent.glob(f".{output.name}{_TMP}*")):
        if (tmp / "old").exists() and (tmp / "new").exists():
            os.replace(tmp / "new", output)
            shutil.rmtree(tmp, ignore_errors=True)
            return output
    return None


def write_atomically(output: Union[str, Path], write: Callable[[Path], Any]) -> Path:
    """Run `write` on a temporary path beside `output`, then rename it into place: an existing
    `output` is replaced only once the new one is complete."""
    output = Path(output)
    if output.is_symlink():
        raise UsageError(f"{output}: is a symbolic link (to {os.readlink(output)}); remove it or write elsewhere")
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}{_TMP}", dir=output.parent))
    except OSError as err:
        raise OSError(err.errno, f"{output}: cannot write beside it ({err.strerror}); check that "
                                 f"{output.parent} is writable") from None
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


def save_pipeline(nlp: Language, output: Union[str, Path], out: Optional[OutputDir] = None) -> Path:
    """`nlp.to_disk(output)`, written to a temporary directory and renamed into place (through
    `out`, when the pipeline goes into an output directory, so that its files are recorded)."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise UsageError(f"{output}: is a file; a pipeline is saved to a directory")
    if out is not None:
        return out.write(output.name, nlp.to_disk)
    return write_atomically(output, nlp.to_disk)

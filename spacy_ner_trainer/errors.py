"""The one error type for bad NER data, and the summary of what lenient policies changed."""
import logging
from collections import defaultdict
from typing import Dict, List, Optional, Union
from pathlib import Path

logger = logging.getLogger("spacy.ner_trainer")

# How many locations a summary names before it only counts.
MAX_LOCATIONS = 5


class NerDataError(ValueError):
    """Bad NER data: the message names the file, the line or record, the problem and the fix.

    Attributes:
        path (Optional[str]): the file the problem is in.
        line (Optional[int]): the 1-based line (or record, for DocBins) it is on.
        reason (str): the message without the location.
        severity (str): "error", or "warning" for what the reader fixes by itself (whitespace
            at a span's edges), as `debug` lists it.
    """

    def __init__(
        self,
        reason: str,
        path: Optional[Union[str, Path]] = None,
        line: Optional[int] = None,
        severity: str = "error",
    ):
        self.path = str(path) if path is not None else None
        self.line = line
        self.reason = reason
        self.severity = severity
        super().__init__(f"{format_location(self.path, line)}{reason}")


def format_location(path: Optional[str], line: Optional[int]) -> str:
    if path is None:
        return ""
    return f"{path}:{line}: " if line is not None else f"{path}: "


class ChangeLog:
    """Counts what the reader changed or dropped, keeping the first few locations of each kind."""

    def __init__(self) -> None:
        self.counts: Dict[str, int] = defaultdict(int)
        self.where: Dict[str, List[str]] = defaultdict(list)

    def add(self, kind: str, path: str, line: int, detail: str = "") -> None:
        self.counts[kind] += 1
        if len(self.where[kind]) < MAX_LOCATIONS:
            self.where[kind].append(f"{path}:{line}" + (f" {detail}" if detail else ""))

    def summary(self) -> List[str]:
        lines = []
        for kind, count in self.counts.items():
            more = count - len(self.where[kind])
            where = "; ".join(self.where[kind]) + (f"; and {more} more" if more > 0 else "")
            lines.append(f"{kind}: {count} ({where})")
        return lines

    def report(self, source: str) -> None:
        """One warning for the whole pass, however many kinds of change it made."""
        if self:
            logger.warning("%s: the reader changed the data: %s", source, " | ".join(self.summary()))

    def __bool__(self) -> bool:
        return bool(self.counts)


class UsageError(ValueError):
    """A setting, path or output that cannot work as given: the CLI prints one line and exits 2."""

"""Parse NER files (seed tuples, span JSONL, CoNLL/IOB, DocBin) into located records, streaming."""
import json
import os
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, List, NamedTuple, Optional, Tuple, Union

import srsly
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from .errors import ChangeLog, NerDataError, logger

FORMATS = ("auto", "tuples", "spans", "conll", "docbin")
SCHEMES = ("auto", "iob1", "iob2", "biluo")
# Suffixes a directory is searched for; a single file of any name is read by content.
SUFFIXES = {
    ".json": "json",
    ".jsonl": "json",
    ".spacy": "docbin",
    ".conll": "conll",
    ".iob": "conll",
    ".iob2": "conll",
    ".bio": "conll",
    ".bioes": "conll",
    ".biluo": "conll",
    ".tsv": "conll",
}
# BIOES spellings map onto BILUO.
_PREFIXES = {"B": "B", "I": "I", "L": "L", "E": "L", "U": "U", "S": "U"}

Span = Tuple[int, int, str]


class Record(NamedTuple):
    """One example as read: char spans over `text`, or token spans over `words`, or a `doc`."""

    path: str
    line: int
    text: Optional[str] = None
    words: Optional[List[str]] = None
    spans: List[Span] = []
    doc: Optional[Doc] = None
    lines: Optional[List[int]] = None  # CoNLL: the line of each word


def cli_option(name: str, value: str) -> str:
    """A reader setting as a Python argument and as the CLI flag that sets it, for messages:
    on_overlap="longest" (--on-overlap longest)."""
    return f'{name}="{value}" (--{name.replace("_", "-")} {value})'


def list_files(path: Union[str, Path], report: bool = False) -> List[Path]:
    """The files a `path` argument names: the file itself, or every supported file under a
    directory in sorted order. Hidden files and folders (".name") and saved pipelines (a
    folder with config.cfg and meta.json: training output kept next to the data) are skipped.

    Args:
        path (Union[str, Path]): a file or directory.
        report (bool): log what was skipped (a reader does so once, not every epoch).
    RETURNS (List[Path]): the files to read.
    """
    path = Path(path)
    if not path.exists():
        raise NerDataError("no such file or directory; check the path", path)
    if not path.is_dir():
        return [path]
    if is_pipeline(path):
        raise NerDataError("this is a saved pipeline (config.cfg and meta.json), not data; "
                           "pass the data's path", path)
    files: List[Path] = []
    hidden: List[str] = []
    pipelines: List[str] = []
    for root, dirs, names in os.walk(path):
        folder = Path(root)
        for name in sorted(dirs):
            if name.startswith("."):
                hidden.append(str(folder / name) + os.sep)
                dirs.remove(name)
            elif is_pipeline(folder / name):
                pipelines.append(str(folder / name))
                dirs.remove(name)
        for name in names:
            if name.startswith("."):
                hidden.append(str(folder / name))
            elif Path(name).suffix.lower() in SUFFIXES:
                files.append(folder / name)
    if report and pipelines:
        logger.warning("%s: skipped %d saved pipeline(s) (a folder with config.cfg and meta.json): %s",
                       path, len(pipelines), ", ".join(sorted(pipelines)))
    if report and hidden:
        logger.info("%s: skipped %d hidden file(s) and folder(s): %s", path, len(hidden), ", ".join(sorted(hidden)))
    if not files:
        kinds = ", ".join(sorted(SUFFIXES))
        raise NerDataError(f"the directory holds no supported files ({kinds})", path)
    return sorted(files)


def is_pipeline(folder: Path) -> bool:
    """Whether `folder` is a saved spaCy pipeline, as nlp.to_disk writes it."""
    return (folder / "config.cfg").is_file() and (folder / "meta.json").is_file()


def detect_format(path: Path) -> str:
    """'json', 'conll' or 'docbin', from the suffix or, failing that, the first line."""
    kind = SUFFIXES.get(path.suffix.lower())
    how = f"suffix {path.suffix}"
    if kind is None:
        how = "content"
        with path.open("rb") as file_:
            head = file_.read(4096).lstrip()
        if head.startswith((b"[", b"{")):
            kind = "json"
        elif head[:1] == b"\x78" and head[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda"):
            kind = "docbin"  # a zlib stream, as DocBin.to_disk writes
        else:
            kind = "conll"
    logger.info("%s: reading as %s (decided from %s)", path, kind, how)
    return kind


def iter_records(
    path: Path,
    format: str = "auto",
    *,
    scheme: str = "auto",
    vocab: Optional[Vocab] = None,
    log: Optional[ChangeLog] = None,
    problems: Optional[List[NerDataError]] = None,
) -> Iterator[Record]:
    """Records of one file, in order. Raises NerDataError on bad data or, given a `problems`
    list, appends each bad record's error to it and goes on where the format allows."""
    if format not in FORMATS:
        raise NerDataError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}", path)
    if scheme not in SCHEMES:
        raise NerDataError(f"unknown scheme {scheme!r}; use one of {', '.join(SCHEMES)}", path)
    log = log if log is not None else ChangeLog()
    kind = detect_format(path) if format == "auto" else format
    if kind in ("json", "tuples", "spans"):
        records = _iter_json(path, None if kind == "json" else kind, log, problems)
    elif kind == "conll":
        records = _iter_conll(path, scheme, log, problems)
    else:
        records = _iter_docbin(path, vocab if vocab is not None else Vocab())
    yield from records


def _iter_lines(path: Path) -> Iterator[Tuple[int, str]]:
    """(line number, line without its end) for each line. A byte that is not UTF-8 is
    reported on its line."""
    lineno = 0
    try:
        with path.open(encoding="utf8", newline="") as file_:
            for lineno, line in enumerate(file_, 1):
                if lineno == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                yield lineno, line.rstrip("\r\n")
    except UnicodeDecodeError:
        raise _decode_error(path) from None


def _decode_error(path: Path) -> NerDataError:
    # Text mode decodes in chunks and cannot say where; find the line in binary.
    with path.open("rb") as file_:
        for lineno, raw in enumerate(file_, 1):
            try:
                raw.decode("utf8")
            except UnicodeDecodeError as err:
                return NerDataError(
                    f"byte 0x{raw[err.start]:02x} at column {err.start + 1} is not valid UTF-8; "
                    "re-save the file as UTF-8", path, lineno)
    return NerDataError("the file is not valid UTF-8; re-save it as UTF-8", path)


# JSON: seed tuples and span records, as a JSON array or JSONL


def _report(error: NerDataError, problems: Optional[List[NerDataError]]) -> None:
    if problems is None:
        raise error
    problems.append(error)


def _iter_json(path: Path, want: Optional[str], log: ChangeLog,
               problems: Optional[List[NerDataError]] = None) -> Iterator[Record]:
    lines = _iter_lines(path)
    for lineno, line in lines:
        if line.strip():
            break
    else:
        raise NerDataError("the file is empty; expected JSON or JSONL records", path)
    try:
        first = _loads(line)
    except (ValueError, RecursionError):
        first = None
    if isinstance(first, dict) or (
        isinstance(first, list) and len(first) == 2 and isinstance(first[0], str)
    ):
        objects: Iterable[Tuple[int, object]] = _iter_jsonl(path, lineno, first, lines, problems)
        logger.info("%s: JSONL records", path)
    else:
        objects = _iter_json_array(path, lineno, line, lines)
        logger.info("%s: a JSON array of records", path)
    n_objects = 0
    for lineno, obj in objects:
        n_objects += 1
        try:
            record = parse_record(obj, want, path, lineno)
        except NerDataError as err:
            _report(err, problems)
            continue
        if record is None:
            log.add('records with "answer": "reject" or "ignore" skipped', str(path), lineno)
            continue
        yield record
    if not n_objects:
        raise NerDataError("the JSON array is empty; expected records", path)


def _iter_jsonl(
    path: Path, lineno: int, first: object, lines: Iterator[Tuple[int, str]],
    problems: Optional[List[NerDataError]] = None,
) -> Iterator[Tuple[int, object]]:
    yield lineno, first
    for lineno, line in lines:
        if not line.strip():
            continue
        try:
            obj = _loads(line)
        except (ValueError, RecursionError) as err:
            _report(NerDataError(
                f"invalid JSON ({err}) in {_clip(line)}; each line must hold one record", path, lineno
            ), problems)
            continue
        yield lineno, obj


def _loads(line: str) -> object:
    try:
        return srsly.json_loads(line)  # ujson: fast, but no integers beyond 64 bits
    except ValueError:
        return json.loads(line)


def _iter_json_array(
    path: Path, lineno: int, line: str, lines: Iterator[Tuple[int, str]]
) -> Iterator[Tuple[int, object]]:
    """The elements of a top-level JSON array, decoded one at a time from a rolling buffer."""
    decoder = json.JSONDecoder()
    buf, pos = line + "\n", 0
    mark, base = 0, lineno  # newlines are counted up to buf[mark], which is on line `base`

    def more() -> bool:
        # A few lines at a time, so a pretty-printed element is not re-decoded line by line.
        nonlocal buf
        chunk = [next_line for _, next_line in islice(lines, 64)]
        buf += "".join(next_line + "\n" for next_line in chunk)
        return bool(chunk)

    def peek() -> str:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos].isspace():
                pos += 1
            if pos < len(buf):
                return buf[pos]
            if not more():
                return ""

    def line_of(at: int) -> int:
        return base + buf.count("\n", mark, at)

    def error(message: str, at: int) -> NerDataError:
        column = at - (buf.rfind("\n", 0, at) + 1) + 1
        return NerDataError(f"invalid JSON: {message} at column {column}", path, line_of(at))

    if peek() != "[":
        raise error("expected a JSON array '[' or one JSON record per line", pos)
    pos += 1
    first = True
    while True:
        char = peek()
        if char == "]":
            pos += 1
            break
        if not first:
            if char != ",":
                raise error("expected ',' or ']' after an array element", pos)
            pos += 1
            char = peek()
        if char == "":
            raise error("the array is not closed with ']'", len(buf))
        first = False
        while True:
            try:
                obj, end = decoder.raw_decode(buf, pos)
                break
            except json.JSONDecodeError as err:
                incomplete = err.pos >= len(buf.rstrip()) or err.msg.startswith("Unterminated")
                if not (incomplete and more()):
                    raise error(err.msg, err.pos) from None
            except RecursionError:
                raise error("the value is nested too deeply", pos) from None
        base, mark = line_of(pos), pos
        yield base, obj
        pos = end
        if mark > 1 << 13:  # drop what was read now and then, not after every element
            buf, pos, mark = buf[mark:], pos - mark, 0
    if peek() != "":
        raise error("unexpected content after the closing ']'", pos)


def _clip(value: object, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def parse_record(obj: object, want: Optional[str], path: Union[str, Path], line: int) -> Optional[Record]:
    if isinstance(obj, list) and want != "spans":
        if len(obj) != 2 or not isinstance(obj[0], str) or not isinstance(obj[1], dict):
            raise NerDataError(
                f'expected [text, {{"entities": [[start, end, label], ...]}}], got {_clip(obj)}',
                path,
                line,
            )
        text, annotations = obj
        entities = annotations.get("entities", [])
    elif isinstance(obj, dict) and want != "tuples":
        if obj.get("answer") in ("reject", "ignore"):
            return None
        text = obj.get("text")
        if not isinstance(text, str):
            raise NerDataError(f'the record has no "text" string: {_clip(obj)}', path, line)
        entities = obj["spans"] if "spans" in obj else obj.get("entities", [])
        entities = [] if entities is None else entities
    else:
        shape = {
            "tuples": '[text, {"entities": [[start, end, label], ...]}]',
            "spans": '{"text": ..., "spans": [{"start": s, "end": e, "label": L}, ...]}',
        }.get(want or "", 'a [text, {"entities": ...}] pair or a {"text": ..., "spans": ...} object')
        raise NerDataError(f"expected {shape}, got {_clip(obj)}", path, line)
    if not isinstance(entities, list):
        raise NerDataError(f"the entities must be a list, got {_clip(entities)}", path, line)
    _check_encodable(text, path, line)
    return Record(str(path), line, text=text, spans=[_parse_span(e, text, path, line) for e in entities])


def _check_encodable(text: str, path: Union[str, Path], line: int) -> None:
    try:
        text.encode("utf8")
    except UnicodeEncodeError as err:
        raise NerDataError(
            f"the text holds a lone surrogate escape ({text[err.start]!r} at character {err.start}), "
            "which is not text; fix the writer that produced it", path, line) from None


def _parse_span(entity: object, text: str, path: Union[str, Path], line: int) -> Span:
    if isinstance(entity, dict):
        start, end, label = entity.get("start"), entity.get("end"), entity.get("label")
    elif isinstance(entity, (list, tuple)) and len(entity) == 3:
        start, end, label = entity
    else:
        raise NerDataError(
            f'expected a span [start, end, label] or {{"start", "end", "label"}}, got {_clip(entity)}',
            path,
            line,
        )
    if type(start) is not int or type(end) is not int:
        raise NerDataError(
            f"span {_clip(entity)}: start and end must be integer character offsets", path, line
        )
    if not isinstance(label, str) or not label:
        raise NerDataError(f"span [{start}, {end}]: the label must be a non-empty string", path, line)
    _check_encodable(label, path, line)
    if start < 0 or end > len(text):
        raise NerDataError(
            f"span [{start}, {end}] {label} is out of range for a text of {len(text)} characters; "
            "fix the offsets (they count characters, not bytes)",
            path,
            line,
        )
    if start >= end:
        raise NerDataError(
            f"span [{start}, {end}] {label} is empty or reversed (end must be greater than start); "
            "fix the offsets",
            path,
            line,
        )
    return start, end, label


# CoNLL / IOB: token<space or tab>...<tag>, one token a line


def _iter_conll(path: Path, scheme: str, log: ChangeLog,
                problems: Optional[List[NerDataError]] = None) -> Iterator[Record]:
    state = _Scheme(path, None if scheme == "auto" else scheme)
    name = str(path)
    n_records = 0

    def sentence() -> Optional[Record]:
        try:
            spans = state.decode(words, tags, lines)
        except NerDataError as err:
            _report(err, problems)
            return None
        return Record(name, lines[0], words=words, spans=spans, lines=lines)

    words: List[str] = []
    tags: List[str] = []
    lines: List[int] = []
    lineno = 0
    try:
        # utf-8-sig drops a byte-order mark; the file is read here, not through _iter_lines,
        # because this loop runs once a token and is the reader's hot path.
        with path.open(encoding="utf-8-sig", newline="") as file_:
            for lineno, line in enumerate(file_, 1):
                cols = line.split()
                if len(cols) == 2 and not line[0].isspace():
                    token, tag = cols  # the common case: one token and its tag
                    boundary = token[0] == "-" and token.startswith("-DOCSTART-")
                elif not cols or cols[0].startswith("-DOCSTART-"):
                    boundary = True
                else:
                    line = line.rstrip()
                    cols = line.split("\t") if "\t" in line else cols
                    if len(cols) < 2:
                        _report(NerDataError(
                            f"expected a token and a tag separated by a tab or spaces, got {_clip(line)}",
                            path,
                            lineno,
                        ), problems)
                        continue
                    token, tag = cols[0].strip(), cols[-1].strip()
                    boundary = False
                if boundary:  # a blank line or -DOCSTART- ends the sentence
                    if words:
                        n_records += 1
                        record = sentence()
                        if record is not None:
                            yield record
                        words, tags, lines = [], [], []
                    continue
                if not token:
                    if tag != "O":
                        _report(NerDataError(
                            f"an empty token is tagged {tag}, inside an entity; "
                            "give the token its text or remove the line and fix the tags around it",
                            path,
                            lineno,
                        ), problems)
                        continue
                    log.add("empty or whitespace-only tokens tagged O dropped", str(path), lineno)
                    continue
                words.append(token)
                tags.append(tag)
                lines.append(lineno)
    except UnicodeDecodeError:
        raise _decode_error(path) from None
    if words:
        record = sentence()
        if record is not None:
            yield record
    elif not n_records:
        raise NerDataError("the file holds no tokens; expected one token and tag a line", path)


class _Scheme:
    """Decodes tag sequences with one scheme per file: forced, or decided by the first
    sentence that has an entity."""

    def __init__(self, path: Path, scheme: Optional[str]):
        self.path = path
        self.scheme = scheme
        self.decided_at: Optional[int] = None

    def decide(self, tags: List[str], lines: List[int]) -> None:
        tagged = [(t, n) for t, n in zip(tags, lines) if t != "O"]
        if not tagged:
            return
        if any(t[:2] in ("L-", "U-", "E-", "S-") for t, _ in tagged):
            self.scheme = "biluo"
        elif tagged[0][0].startswith("I-"):
            self.scheme = "iob1"
        else:
            self.scheme = "iob2"
        self.decided_at = tagged[0][1]
        logger.info("%s: tag scheme %s (decided at line %d)", self.path, self.scheme.upper(), self.decided_at)

    def fail(self, why: str, line: int) -> NerDataError:
        fix = "fix the tag, or set "
        if self.decided_at is not None:
            fix = f"the file was read as {str(self.scheme).upper()} from line {self.decided_at}; " + fix
        others = [s for s in ("iob1", "iob2", "biluo") if s != self.scheme]
        return NerDataError(f"{why}; {fix}" + " or ".join(cli_option("scheme", s) for s in others),
                            self.path, line)

    def decode(self, words: List[str], tags: List[str], lines: List[int]) -> List[Span]:
        if self.scheme is None:
            self.decide(tags, lines)
        biluo = self.scheme == "biluo"
        spans: List[Span] = []
        start, label = -1, ""  # the open entity, if start >= 0
        for i, tag in enumerate(tags):
            if tag == "O":
                if start >= 0:
                    if biluo:
                        raise self.fail(f"entity {label} from line {lines[start]} is not closed with L- before O", lines[i])
                    spans.append((start, i, label))
                    start = -1
                continue
            prefix = _PREFIXES.get(tag[0]) if len(tag) > 2 and tag[1] == "-" else None
            if prefix is None:
                raise NerDataError(
                    f"unknown tag {tag!r} on token {words[i]!r}; tags are O or B-, I-, L-/E-, U-/S- and a label",
                    self.path,
                    lines[i],
                )
            new = tag[2:]
            if "," in new and any(f",{p}-" in new for p in _PREFIXES):
                raise NerDataError(
                    f"multi-label tag {tag!r} on token {words[i]!r}; NER needs one tag a token",
                    self.path,
                    lines[i],
                )
            if prefix in ("L", "U") and not biluo:
                raise self.fail(f"tag {tag} on token {words[i]!r} belongs to BILUO/BIOES", lines[i])
            continues = start >= 0 and label == new
            if prefix == "B" or (prefix == "I" and not continues and self.scheme == "iob1"):
                if start >= 0:
                    if biluo:
                        raise self.fail(f"{tag} on token {words[i]!r} starts an entity while {label} from line {lines[start]} is open", lines[i])
                    spans.append((start, i, label))
                start, label = i, new
            elif prefix == "I":
                if not continues:
                    after = f"{tags[i - 1]} ({words[i - 1]!r})" if i else "the sentence start"
                    raise self.fail(f"{tag} on token {words[i]!r} follows {after}, so it starts no entity", lines[i])
            elif prefix == "L":
                if not continues:
                    raise self.fail(f"{tag} on token {words[i]!r} ends an entity that was not begun", lines[i])
                spans.append((start, i + 1, label))
                start = -1
            else:  # U
                if start >= 0:
                    raise self.fail(f"{tag} on token {words[i]!r} while {label} from line {lines[start]} is open", lines[i])
                spans.append((i, i + 1, new))
        if start >= 0:
            if biluo:
                raise self.fail(f"entity {label} from line {lines[start]} is not closed with L- at the sentence end", lines[-1])
            spans.append((start, len(tags), label))
        return spans


# DocBin


def _iter_docbin(path: Path, vocab: Vocab) -> Iterator[Record]:
    try:
        doc_bin = DocBin().from_disk(path)
    except Exception as err:  # msgpack/zlib raise many types for a damaged file
        raise NerDataError(
            f"not a readable .spacy DocBin ({type(err).__name__}: {err}); write it with DocBin.to_disk",
            path,
        ) from None
    if not len(doc_bin):
        raise NerDataError("the DocBin holds no documents", path)
    docs = doc_bin.get_docs(vocab)
    for i in range(1, len(doc_bin) + 1):
        try:
            doc = next(docs)
        except Exception as err:  # a damaged DocBin fails while its docs are rebuilt
            raise NerDataError(
                f"document {i} cannot be rebuilt ({type(err).__name__}: {err}); write the file again "
                "with DocBin.to_disk", path, i) from None
        yield Record(str(path), i, doc=doc, spans=[(e.start, e.end, e.label_) for e in doc.ents])

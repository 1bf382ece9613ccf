"""The whole job: train, save model-best and model-last with metrics, verify, and return what happened."""
import random
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import spacy
import srsly
from spacy.language import Language
from spacy.training import Example

from .checkpoint import component_bytes, load_component_bytes
from .evaluate import Labels
from .batching import DEFAULT_BUFFER_SIZE
from .errors import UsageError, logger
from .formats import list_files
from .loop import OnEpoch, TrainResult, check_settings, train
from .readers import TrainingData, to_examples
from .checkpoint import CheckpointError
from .save import OutputDir, recover, save_pipeline, write_atomically
from .verify import DEFAULT_MIN_RECALL, VerificationReport, verify

MODEL_BEST = "model-best"
MODEL_LAST = "model-last"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint"
OUTPUT_ENTRIES = (MODEL_BEST, MODEL_LAST, METRICS, CHECKPOINT)
# Training examples verified after training: a seeded sample, so that a corpus of any size
# is checked in bounded time and memory. The dev data is scored whole.
DEFAULT_VERIFY_SAMPLE = 2000
_SETTINGS = ("dropout", "learn_rate", "patience", "rehearse_ratio", "rehearse_distill", "keep_original", "rehearse",
             "new_label_margin", "original_margin")
# Training files larger than this are streamed through a shuffle buffer instead of being held
# in memory (bench/bench_scale.py): a parsed example takes several times its bytes on disk.
STREAM_ABOVE_BYTES = 32 * 1024 * 1024


def choose_buffer_size(train_data: TrainingData, buffer_size: Optional[int]) -> int:
    """The buffer size given, or for None: stream (DEFAULT_BUFFER_SIZE) when the training files
    are larger than STREAM_ABOVE_BYTES, else hold the data in memory (0)."""
    if buffer_size is not None:
        return buffer_size
    path = train_data if isinstance(train_data, (str, Path)) else getattr(train_data, "path", None)
    if path is None:
        return 0
    size = sum(f.stat().st_size for f in list_files(path))
    if size <= STREAM_ABOVE_BYTES:
        return 0
    logger.warning("%s: %d MB of training data, streamed through a shuffle buffer of %d examples "
                   "(--buffer-size 0 holds it in memory)", path, size // 2**20, DEFAULT_BUFFER_SIZE)
    return DEFAULT_BUFFER_SIZE


@dataclass
class TrainingRun:
    """What `train_pipeline` did: the training result, where it saved, and the reports."""

    nlp: Language
    result: TrainResult
    train_report: VerificationReport  # on a sample of the training data
    dev_report: Optional[VerificationReport] = None
    output: Optional[Path] = None
    saved: Dict[str, Path] = field(default_factory=dict)  # "model-best", "model-last" -> path
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> List[str]:
        return self.train_report.failures() + (self.dev_report.failures() if self.dev_report else [])

    @property
    def ok(self) -> bool:
        return not self.failures


def load_pipeline(model: Optional[Union[str, Path, Language]], lang: str = "en") -> Language:
    """A pipeline from an installed package name or a path, or a blank one of `lang`."""
    if isinstance(model, Language):
        return model
    return spacy.blank(lang) if model is None else spacy.load(model)


def sample(examples: Iterable[Example], size: int, seed: int) -> List[Example]:
    """A seeded uniform sample of at most `size` examples from a stream (reservoir sampling):
    memory stays bounded whatever the corpus size."""
    rng = random.Random(seed)
    kept: List[Example] = []
    for i, eg in enumerate(examples):
        if i < size:
            kept.append(eg)
        else:
            j = rng.randrange(i + 1)
            if j < size:
                kept[j] = eg
    return kept


def train_pipeline(
    train_data: TrainingData,
    *,
    model: Optional[Union[str, Path, Language]] = None,
    lang: str = "en",
    dev_data: Optional[TrainingData] = None,
    output: Optional[Union[str, Path]] = None,
    resume: bool = False,
    meta: Optional[Dict[str, Any]] = None,
    min_recall: float = 0.0,
    labels: Labels = None,
    verify_sample: int = DEFAULT_VERIFY_SAMPLE,
    buffer_size: Optional[int] = None,
    on_epoch: Optional[OnEpoch] = None,
    **train_kwargs: Any,
) -> TrainingRun:
    """Train `ner` on a pipeline, save DIR/model-last (and DIR/model-best with dev data),
    DIR/metrics.jsonl and checkpoints, then verify the saved model.

    Args:
        train_data: as for `train`.
        model: the base pipeline: an installed package name, a path, a Language, or None
            for a blank `lang` pipeline.
        lang (str): the language of a blank pipeline.
        dev_data: as for `train`; picks model-best.
        output (Optional[Union[str, Path]]): the output directory: new, empty, or an earlier
            output of this package; anything else is refused before any work.
        resume (bool): continue from OUTPUT/checkpoint.
        meta (Optional[Dict[str, Any]]): meta.json fields to set, e.g. {"name": ..., "version": ...}.
        min_recall (float): recall on the training sample that verification requires.
        labels (Union[None, str, Iterable[str]]): the labels scored (see evaluate).
        verify_sample (int): training examples verified (a seeded sample).
        buffer_size (Optional[int]): as for `train`; None streams training files larger than
            STREAM_ABOVE_BYTES and holds smaller ones in memory.
        on_epoch: called with each epoch's row, as by `train`.
        **train_kwargs: passed to `train` (n_iter, dropout, seed, patience, rehearse, ...).
    RETURNS (TrainingRun): the result, the saved paths and the reports.
    """
    if resume and output is None:
        raise UsageError("--resume needs the --output directory of the run to resume")
    buffer_size = choose_buffer_size(train_data, buffer_size)
    check_settings(**{k: v for k, v in train_kwargs.items() if k in _SETTINGS}, buffer_size=buffer_size,
                   train_data=train_data, checkpoint=output, resume=resume)
    if resume and output is not None and recover(Path(output) / CHECKPOINT) is None:
        raise CheckpointError(f"{Path(output) / CHECKPOINT}: no checkpoint to resume from; run once without "
                              "--resume first")
    out_dir = OutputDir(output, OUTPUT_ENTRIES) if output is not None else None
    out = out_dir.path if out_dir is not None else None
    nlp = load_pipeline(model, lang)
    # The untouched pipeline, to check that training ner changed no other component's output.
    others = [name for name in nlp.pipe_names if name != "ner"]
    reference = load_pipeline(model, lang) if model is not None and not isinstance(model, Language) and others \
        else None
    rows: List[Dict[str, Any]] = []

    def record(row: Dict[str, Any]) -> None:
        rows.append(row)
        if out_dir is not None:
            out_dir.write(METRICS, lambda p: srsly.write_jsonl(p, rows))
        if on_epoch is not None:
            on_epoch(row)

    if resume and out is not None and (out / METRICS).is_file():
        rows.extend(srsly.read_jsonl(out / METRICS))
    result = train(nlp, train_data, dev_data=dev_data, on_epoch=record, buffer_size=buffer_size,
                   checkpoint=out / CHECKPOINT if out is not None else None, resume=resume, **train_kwargs)
    if resume:
        # The metrics file is rewritten from the checkpoint's record of the epochs.
        rows[:] = list(result.epochs)
        if out_dir is not None:
            out_dir.write(METRICS, lambda p: srsly.write_jsonl(p, rows))
    run = TrainingRun(nlp=nlp, result=result, train_report=None, output=out)  # type: ignore[arg-type]
    run.meta = _set_meta(nlp, result, meta)
    if out_dir is not None:
        run.saved = _save(nlp, result, out_dir)
    seed = train_kwargs.get("seed", 0)
    train_sample = sample(to_examples(nlp, train_data), verify_sample, seed)
    saved = run.saved.get(MODEL_BEST) or run.saved.get(MODEL_LAST)
    run.train_report = verify(nlp, train_sample, reference=reference, min_recall=min_recall,
                              round_trip=saved if saved is not None else True, retention=result.retention_examples,
                              labels=labels, data_name=f"a sample of {len(train_sample)} training examples")
    if result.best_evaluation is not None and labels is None:
        # model-best predicts what its epoch's evaluation saw: no second pass over the dev data.
        run.dev_report = VerificationReport(evaluation=result.best_evaluation, min_recall=DEFAULT_MIN_RECALL,
                                            data_name="the dev data")
    elif dev_data is not None:
        run.dev_report = verify(nlp, to_examples(nlp, dev_data), round_trip=False, labels=labels,
                                data_name="the dev data")
    if saved is not None:
        _store_reports(run, saved)
    return run


def _set_meta(nlp: Language, result: TrainResult, meta: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The model says what it is: its own name and version, and its own dev scores."""
    base = {k: nlp.meta.get(k) for k in ("lang", "name", "version")}
    # A fine-tuned pipeline is no longer the package it came from: it gets a name and version
    # of its own unless given, and names its base under "spacy_ner_trainer".
    trained_base = bool(nlp.meta.get("name")) and nlp.meta.get("name") != "pipeline"
    nlp.meta["name"] = f"{base['name']}_ner" if trained_base else "pipeline"
    nlp.meta["version"] = "0.0.0"
    nlp.meta.update(meta or {})
    if result.best_epoch is not None:
        scores = result.scores[result.best_epoch - 1]
        nlp.meta["performance"] = {k: scores[k] for k in ("ents_p", "ents_r", "ents_f", "ents_per_type")}
    else:
        nlp.meta["performance"] = {}
    nlp.meta["spacy_ner_trainer"] = {"base": base, "best_epoch": result.best_epoch, "labels": result.labels,
                                     "rehearsed": result.rehearsed, "kept": result.kept, "trained": result.trained,
                                     "confident": result.confident,
                                     "confident_margin": result.confident_margin}
    return nlp.meta


def _save(nlp: Language, result: TrainResult, out: OutputDir) -> Dict[str, Path]:
    """model-last holds the last epoch's weights and scores, model-best the best epoch's."""
    saved = {}
    best = component_bytes(nlp, list(result.last_weights))
    load_component_bytes(nlp, result.last_weights)
    performance = nlp.meta["performance"]
    if result.scores:
        last = result.scores[-1]
        nlp.meta["performance"] = {k: last[k] for k in ("ents_p", "ents_r", "ents_f", "ents_per_type")}
    saved[MODEL_LAST] = save_pipeline(nlp, out.path / MODEL_LAST, out)
    load_component_bytes(nlp, best)
    nlp.meta["performance"] = performance
    if result.best_epoch is not None:
        saved[MODEL_BEST] = save_pipeline(nlp, out.path / MODEL_BEST, out)
    return saved


def _store_reports(run: TrainingRun, verified: Path) -> None:
    """The verification summaries go into the meta.json of the model they describe."""
    summary = {"train": run.train_report.summary(), "dev": run.dev_report.summary() if run.dev_report else None}
    meta_path = verified / "meta.json"
    meta = srsly.read_json(meta_path)
    meta.setdefault("spacy_ner_trainer", {})["verify"] = summary
    write_atomically(meta_path, lambda p: srsly.write_json(p, meta))


def resume_command(argv: Optional[Sequence[str]] = None) -> str:
    """The command line that resumes this run: the same one, plus --resume."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--resume" not in args:
        args.append("--resume")
    return "python -m spacy_ner_trainer " + shlex.join(args)


"""Post-training verification: recall, the disk round trip, other components, retention."""
import tempfile
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import resolve_dot_names
from wasabi import msg, table

from .errors import logger
from .evaluate import Evaluation, Labels, _ents, _fresh, evaluate
from .readers import to_examples

# Recall verify requires by default: none. Scores on real data vary too much for one
# threshold to mean anything; the recipe's check on its own training data sets 1.0.
DEFAULT_MIN_RECALL = 0.0
MAX_LISTED = 50  # differences kept in a report
# Examples the reloaded pipeline predicts again: a copy that lost a weight, a label or a
# setting differs on most texts, so a few hundred show it at a fraction of a full pass.
ROUND_TRIP_EXAMPLES = 500


@dataclass
class VerificationReport:
    """What `verify` found. `ok` holds when recall reaches `min_recall`, the reloaded pipeline
    predicts the same, and (with a reference) no other component's output changed."""

    evaluation: Evaluation
    min_recall: float
    round_trip_ok: Optional[bool] = None
    round_trip_diffs: List[Dict[str, Any]] = field(default_factory=list)
    components_ok: Optional[bool] = None
    component_diffs: List[Dict[str, Any]] = field(default_factory=list)
    # Per old label: agreement (P/R/F, support) with the pipeline before fine-tuning.
    retention: Optional[Dict[str, Dict[str, float]]] = None
    data_name: str = "the data"

    n_examples = property(lambda self: self.evaluation.n_examples)
    precision = property(lambda self: self.evaluation.scores["ents_p"])
    recall = property(lambda self: self.evaluation.scores["ents_r"])
    f = property(lambda self: self.evaluation.scores["ents_f"])
    per_label = property(lambda self: self.evaluation.per_label)
    mismatches = property(lambda self: self.evaluation.mismatches)

    @property
    def ok(self) -> bool:
        return (
            self.recall >= self.min_recall
            and self.round_trip_ok is not False
            and self.components_ok is not False
        )

    def failures(self) -> List[str]:
        """One line for each failed check: which check, on which data, the figure and the threshold."""
        lines = []
        if self.recall < self.min_recall:
            lines.append(f"recall on {self.data_name} ({self.n_examples} examples) is {self.recall:.3f}, "
                         f"below the minimum {self.min_recall} (--min-recall)")
        if self.round_trip_ok is False:
            lines.append(f"round trip: the reloaded pipeline predicts other entities on {len(self.round_trip_diffs)} "
                         f"of {self.n_examples} examples of {self.data_name} (must be 0)")
        if self.components_ok is False:
            lines.append(f"other components: their output changed on {len(self.component_diffs)} of "
                         f"{self.n_examples} examples of {self.data_name} (must be 0)")
        return lines

    def summary(self, max_mismatches: int = 20) -> Dict[str, Any]:
        """A compact JSON summary for meta.json: scores per label, counts, a few mismatches."""
        evaluation = self.evaluation
        return {
            "ok": self.ok, "n_examples": self.n_examples, "precision": self.precision, "recall": self.recall,
            "f": self.f, "per_label": evaluation.per_label, "unscored": evaluation.unscored,
            "n_mismatches": len(evaluation.mismatches), "mismatches": evaluation.mismatches[:max_mismatches],
            "failures": self.failures(), "retention": self.retention,
        }

    def to_dict(self) -> Dict[str, Any]:
        """JSON-serializable; lists at most MAX_LISTED mismatches and differences."""
        evaluation = self.evaluation
        return {
            "ok": self.ok,
            "n_examples": self.n_examples,
            "precision": self.precision,
            "recall": self.recall,
            "f": self.f,
            "min_recall": self.min_recall,
            "per_label": evaluation.per_label,
            "confusion": evaluation.confusion,
            "spurious": evaluation.spurious,
            "unscored": evaluation.unscored,
            **evaluation.partial_matches(),
            "failures": self.failures(),
            "n_mismatches": len(evaluation.mismatches),
            "mismatches": evaluation.mismatches[:MAX_LISTED],
            "round_trip_ok": self.round_trip_ok,
            "round_trip_diffs": self.round_trip_diffs[:MAX_LISTED],
            "components_ok": self.components_ok,
            "component_diffs": self.component_diffs[:MAX_LISTED],
            "retention": self.retention,
        }

    def table(self) -> str:
        """The per-label table, as printed by the CLI and the callback."""
        printed = table(self.evaluation.score_rows(), header=("label", "P", "R", "F", "support"), divider=True,
                        aligns=("l", "r", "r", "r", "r"))
        unscored = self.evaluation.unscored_line()
        return printed + ("\n" + unscored if unscored else "")


def _component_view(doc: Doc) -> List[Tuple]:
    return [
        (t.tag_, t.pos_, t.dep_, t.head.i, t.lemma_, str(t.morph),
         t.is_sent_start if doc.has_annotation("SENT_START") else None)
        for t in doc
    ]


def _round_trip(nlp: Language, examples: List[Example], in_memory: List[List[Tuple[int, int, str]]],
                saved: Optional[Path]) -> List[Dict[str, Any]]:
    if saved is not None:
        reloaded = spacy.load(saved)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            nlp.to_disk(Path(tmp) / "model")
            reloaded = spacy.load(Path(tmp) / "model")
    examples = examples[:ROUND_TRIP_EXAMPLES]
    again = reloaded.pipe(_fresh(reloaded, examples), batch_size=256)
    diffs = []
    for ents, doc in zip(in_memory, again):
        if ents != _ents(doc):
            diffs.append({"text": doc.text, "in_memory": ents, "reloaded": _ents(doc)})
    return diffs


def _component_diffs(nlp: Language, reference: Language, examples: List[Example]) -> List[Dict[str, Any]]:
    ours = nlp.pipe(_fresh(nlp, examples), batch_size=256)
    theirs = reference.pipe(_fresh(reference, examples), batch_size=256)
    diffs = []
    for doc, ref in zip(ours, theirs):
        if _component_view(doc) != _component_view(ref):
            changed = [t.i for t, a, b in zip(doc, _component_view(doc), _component_view(ref)) if a != b]
            diffs.append({"text": doc.text, "tokens": changed[:10]})
    return diffs


def verify(
    nlp: Language,
    examples: Any,
    *,
    reference: Optional[Language] = None,
    min_recall: float = DEFAULT_MIN_RECALL,
    round_trip: Union[bool, str, Path] = True,
    retention: Optional[List[Example]] = None,
    labels: Labels = None,
    data_name: str = "the data",
) -> VerificationReport:
    """Check a trained pipeline: are the given entities recognized, does the pipeline predict
    the same after `to_disk` and `spacy.load`, and did training leave the other components alone?

    Args:
        nlp (Language): the trained pipeline.
        examples: gold Examples, seed tuples, a corpus callable or a path (as for `train`).
        reference (Optional[Language]): the pipeline before training; every other component's
            output (tags, dependencies, lemmas, morphology, sentence starts) must be identical.
        min_recall (float): overall recall that `report.ok` requires.
        round_trip (Union[bool, str, Path]): reload the pipeline and compare its predictions
            on the first ROUND_TRIP_EXAMPLES examples: True saves it to a temporary directory
            first; a path names a copy already saved.
        retention (Optional[List[Example]]): the original pipeline's predictions on held-back
            text (`TrainResult.retention_examples`): agreement per old label is reported.
        labels (Union[None, str, Iterable[str]]): the labels scored (see evaluate).
        data_name (str): what the examples are, for the one-line reasons of failed checks.
    RETURNS (VerificationReport): the report.
    """
    examples = list(to_examples(nlp, examples))
    report = VerificationReport(evaluation=evaluate(nlp, examples, labels), min_recall=min_recall,
                                data_name=data_name)
    if round_trip:
        saved = None if round_trip is True else Path(round_trip)
        diffs = _round_trip(nlp, examples, report.evaluation.predicted, saved)
        report.round_trip_ok, report.round_trip_diffs = not diffs, diffs
    if retention:
        labels = {ent.label_ for eg in retention for ent in eg.reference.ents}
        per_label = evaluate(nlp, retention).per_label
        report.retention = {label: s for label, s in per_label.items() if label in labels}
    if reference is not None:
        diffs = _component_diffs(nlp, reference, examples)
        report.components_ok, report.component_diffs = not diffs, diffs
    return report


def verify_callback_v1(
    max_examples: int = 200,
    min_recall: float = 0.0,
    on_fail: str = "warn",
    round_trip: bool = False,
) -> Callable[[Language], Language]:
    """Registered as spacy-ner-trainer.verify.v1, for [training.before_to_disk].

    At every checkpoint spaCy saves, verifies on the first `max_examples` of the training
    and dev corpora, prints a compact per-label table and stores the reports in
    nlp.meta["spacy_ner_trainer"], so that they ship in model-best and model-last meta.json.

    Args:
        max_examples (int): examples taken from each corpus; keeps the check cheap.
        min_recall (float): recall on the training sample that the check requires.
        on_fail (str): "warn", or "error" to stop training when a check fails.
        round_trip (bool): also save, reload and compare (costs a save per checkpoint).
    RETURNS (Callable[[Language], Language]): the callback.
    """
    if on_fail not in ("warn", "error"):
        raise ValueError(f"on_fail={on_fail!r} is not one of 'warn', 'error'")
    samples: Dict[str, List[Example]] = {}

    def before_to_disk(nlp: Language) -> Language:
        if not samples:
            # Resolved once: the corpora named by [training] train_corpus and dev_corpus.
            config = nlp.config.interpolate()  # nlp.config keeps ${paths.train} and the like
            names = [config["training"]["train_corpus"], config["training"]["dev_corpus"]]
            for key, corpus in zip(("train", "dev"), resolve_dot_names(config, names)):
                samples[key] = list(islice(corpus(nlp), max_examples))
        found = {}
        for key, sample in samples.items():
            report = verify(nlp, sample, min_recall=min_recall if key == "train" else 0.0,
                            data_name=f"the first {len(sample)} {key} examples",
                            round_trip=round_trip and key == "train")
            found[key] = report
            msg.text(f"verify ({key}, {report.n_examples} examples): "
                     f"P {report.precision:.3f} R {report.recall:.3f} F {report.f:.3f}  " +
                     "  ".join(f"{label} {s['f']:.2f}" for label, s in sorted(report.per_label.items())))
        nlp.meta["spacy_ner_trainer"] = {"verify": {key: r.summary() for key, r in found.items()}}
        failures = [line for r in found.values() for line in r.failures()]
        if failures:
            why = "verification failed: " + "; ".join(failures)
            if on_fail == "error":
                raise RuntimeError(why)
            logger.warning(why)
        return nlp

    return before_to_disk

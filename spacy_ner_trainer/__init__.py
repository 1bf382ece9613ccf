"""Train spaCy named-entity recognizers: readers, label collection, a training loop, verification."""
from importlib.metadata import PackageNotFoundError, version as _version

from .errors import NerDataError
from .labels import collect_labels, ner_labels_v1
from .batching import shuffled_batches_v1
from .loop import TrainResult, train
from .readers import NerCorpus, ner_corpus_v1
from .verify import VerificationReport, verify, verify_callback_v1
from .workflow import TrainingRun, train_pipeline
from .loop import TrainingInterrupted
from .evaluate import Evaluation, evaluate

try:
    __version__ = _version("spacy-ner-trainer")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0"

__all__ = [
    "NerDataError",
    "NerCorpus",
    "TrainResult",
    "TrainingInterrupted",
    "TrainingRun",
    "Evaluation",
    "evaluate",
    "train_pipeline",
    "__version__",
    "VerificationReport",
    "collect_labels",
    "ner_corpus_v1",
    "ner_labels_v1",
    "shuffled_batches_v1",
    "train",
    "verify",
    "verify_callback_v1",
]

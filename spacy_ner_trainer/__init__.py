"""Train spaCy named-entity recognizers: readers, label collection, a training loop, verification."""
from .errors import NerDataError
from .labels import collect_labels, ner_labels_v1
from .batching import shuffled_batches_v1
from .loop import TrainResult, train
from .readers import NerCorpus, ner_corpus_v1
from .verify import VerificationReport, verify, verify_callback_v1

__all__ = [
    "NerDataError",
    "NerCorpus",
    "TrainResult",
    "VerificationReport",
    "collect_labels",
    "ner_corpus_v1",
    "ner_labels_v1",
    "shuffled_batches_v1",
    "train",
    "verify",
    "verify_callback_v1",
]

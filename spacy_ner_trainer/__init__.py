"""Train spaCy named-entity recognizers: readers, label collection, a training loop, verification."""
from .errors import NerDataError
from .labels import collect_labels, ner_labels_v1
from .readers import NerCorpus, ner_corpus_v1

__all__ = ["NerDataError", "NerCorpus", "collect_labels", "ner_corpus_v1", "ner_labels_v1"]

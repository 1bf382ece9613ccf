"""collect_labels and spacy-ner-trainer.ner_labels.v1: counts, the move table `ner.initialize`
takes, and the warning about rare labels."""
import logging

import pytest
import spacy
import srsly
from spacy.training import Example

from spacy_ner_trainer import NerCorpus, NerDataError, collect_labels, ner_labels_v1

SEED_TUPLES = [
    ("Ann met Bob in Rome.", {"entities": [(0, 3, "PER"), (8, 11, "PER"), (15, 19, "GPE")]}),
    ("Google hired Ann.", {"entities": [(0, 6, "ORG"), (13, 16, "PER")]}),
    ("Nothing here.", {"entities": []}),
    ("No entities key.", {}),
]
SEED_COUNTS = {"PER": 3, "GPE": 1, "ORG": 1}


def as_docs(nlp, tuples):
    docs = []
    for text, annotations in tuples:
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(s, e, label=L) for s, e, L in annotations.get("entities", [])]
        docs.append(doc)
    return docs


def table_labels(table):
    """The labels of a move table, per action."""
    return {action: set(labels) for action, labels in table.items()}


# ---------------------------------------------------------------------------------------
# collect_labels


def test_collect_labels_from_seed_tuples():
    assert collect_labels(SEED_TUPLES) == SEED_COUNTS


def test_collect_labels_from_docs(nlp):
    assert collect_labels(as_docs(nlp, SEED_TUPLES)) == SEED_COUNTS


def test_collect_labels_from_examples_counts_the_reference(nlp):
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in as_docs(nlp, SEED_TUPLES)]
    assert collect_labels(examples) == SEED_COUNTS
    # Annotations on the predicted side are not gold.
    predicted = as_docs(nlp, [("Paris is nice.", {"entities": [(0, 5, "GPE")]})])[0]
    assert collect_labels([Example(predicted, nlp.make_doc("Paris is nice."))]) == {}


def test_collect_labels_from_a_generator_of_mixed_items(nlp):
    docs = as_docs(nlp, SEED_TUPLES[:1])
    items = (item for item in [docs[0], SEED_TUPLES[1], Example(nlp.make_doc("x"), nlp.make_doc("x"))])
    assert collect_labels(items) == {"PER": 3, "GPE": 1, "ORG": 1}


def test_collect_labels_is_most_frequent_first():
    counts = collect_labels(SEED_TUPLES)
    assert list(counts.values()) == sorted(counts.values(), reverse=True)
    assert next(iter(counts)) == "PER"


def test_collect_labels_of_nothing():
    assert collect_labels([]) == {}


def test_collect_labels_on_real_data_matches_published_counts(corpus_path, reader_nlp, published):
    path = corpus_path(published.file)
    counts = collect_labels(eg.reference for eg in NerCorpus(path)(reader_nlp))
    assert counts == published.entities


# ---------------------------------------------------------------------------------------
# ner_labels_v1: the move table


def test_ner_labels_table_on_real_data_matches_published_counts(corpus_path, published):
    table = ner_labels_v1(corpus_path(published.file))
    labels = set(published.entities)
    for action in ("1", "2", "3"):
        assert table[action] == published.entities
    assert table["4"] == {**published.entities, "": 1}
    assert table["5"] == {"": 1}
    assert set(table["0"]) <= {""}
    assert set(table["1"]) == labels


def test_ner_labels_table_initializes_ner(write_jsonl):
    path = write_jsonl("train.jsonl", [[t, {"entities": [list(e) for e in a.get("entities", [])]}]
                                       for t, a in SEED_TUPLES])
    table = ner_labels_v1(path)
    nlp = spacy.blank("en")
    examples = list(NerCorpus(path)(nlp))
    ner = nlp.add_pipe("ner")
    ner.initialize(lambda: examples, nlp=nlp, labels=table)
    assert set(ner.labels) == set(SEED_COUNTS)
    assert {f"B-{label}" for label in SEED_COUNTS} <= set(ner.move_names)
    # The pipeline works after initializing from the table.
    doc = nlp("Ann met Bob in Rome.")
    assert all(ent.label_ in SEED_COUNTS for ent in doc.ents)


def test_ner_labels_table_has_the_shape_spacy_init_labels_writes(corpus_path, nlp):
    path = corpus_path("wnut17/emerging.dev.conll")
    table = ner_labels_v1(path)
    # What `spacy init labels` writes for ner: the component's label_data, as JSON.
    ner = nlp.add_pipe("ner")
    ner.initialize(lambda: NerCorpus(path)(nlp), nlp=nlp)
    written = srsly.json_loads(srsly.json_dumps(ner.label_data))
    assert table_labels(table) == table_labels(written)
    assert srsly.json_loads(srsly.json_dumps(table)) == table


def test_ner_labels_table_from_real_data_initializes_ner(corpus_path):
    path = corpus_path("bc5cdr/devel.tsv")
    nlp = spacy.blank("en")
    examples = list(NerCorpus(path, limit=50)(nlp))
    ner = nlp.add_pipe("ner")
    ner.initialize(lambda: examples, nlp=nlp, labels=ner_labels_v1(path))
    assert set(ner.labels) == {"Chemical", "Disease"}


def test_a_plain_list_of_labels_is_not_a_move_table(nlp):
    # Why the reader returns the move table: ner.initialize(labels=...) takes the table
    # `spacy init labels` writes, and a list of label names fails there.
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in as_docs(nlp, SEED_TUPLES)]
    ner = nlp.add_pipe("ner")
    with pytest.raises((ValueError, TypeError)):
        ner.initialize(lambda: examples, nlp=nlp, labels=sorted(SEED_COUNTS))


def test_ner_labels_label_map_and_labels(write):
    path = write("train.conll", "Ann\tB-per\nin\tO\nRome\tB-loc\n\nBob\tB-per\n")
    table = ner_labels_v1(path, label_map={"per": "PERSON", "loc": "GPE"})
    assert table["1"] == {"PERSON": 2, "GPE": 1}
    table = ner_labels_v1(path, label_map={"per": "PERSON"}, labels=["PERSON"])
    assert table["1"] == {"PERSON": 2}
    assert table["4"] == {"PERSON": 2, "": 1}


def test_ner_labels_reads_directories_and_formats(write, tmp_path):
    write("corpus/a.jsonl", '{"text": "Ann left.", "spans": [{"start": 0, "end": 3, "label": "PER"}]}\n'
                            '{"text": "Bob left.", "spans": [{"start": 0, "end": 3, "label": "PER"}], "answer": "reject"}\n')
    write("corpus/b.conll", "Rome\tB-GPE\nfell\tO\n")
    table = ner_labels_v1(tmp_path / "corpus")
    assert table["1"] == {"PER": 1, "GPE": 1}


def test_ner_labels_forced_format_and_scheme(write):
    path = write("train.txt", "German\tI-MISC\nBritish\tB-MISC\nfood\tO\n")
    assert ner_labels_v1(path, format="conll", scheme="iob1")["1"] == {"MISC": 2}


def test_ner_labels_raises_on_bad_data(write):
    path = write("train.conll", "EU\tB-ORG\nsays\tX-ORG\n")
    with pytest.raises(NerDataError) as info:
        ner_labels_v1(path)
    assert f"{path}:2:" in str(info.value) and "unknown tag" in str(info.value)


def test_ner_labels_missing_path(tmp_path):
    with pytest.raises(NerDataError) as info:
        ner_labels_v1(tmp_path / "nope.jsonl")
    assert str(tmp_path / "nope.jsonl") in str(info.value)


# ---------------------------------------------------------------------------------------
# The warning about rare labels


def low_count_warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == "spacy.ner_trainer" and r.levelno == logging.WARNING]


def test_low_count_labels_are_warned_about(write_jsonl, caplog):
    caplog.set_level(logging.INFO, logger="spacy.ner_trainer")
    records = ([["Ann left.", {"entities": [[0, 3, "PER"]]}]] * 25
               + [["Rome fell.", {"entities": [[0, 4, "GPE"]]}]] * 19
               + [["EU rules.", {"entities": [[0, 2, "ORG"]]}]] * 3)
    path = write_jsonl("train.jsonl", records)
    table = ner_labels_v1(path)
    assert table["1"] == {"PER": 25, "GPE": 19, "ORG": 3}
    (warning,) = low_count_warnings(caplog)
    assert str(path) in warning and "20" in warning
    assert "GPE (19)" in warning and "ORG (3)" in warning
    assert "PER" not in warning


def test_exactly_twenty_examples_is_not_low(write_jsonl, caplog):
    caplog.set_level(logging.INFO, logger="spacy.ner_trainer")
    path = write_jsonl("train.jsonl", [["Ann left.", {"entities": [[0, 3, "PER"]]}]] * 20)
    ner_labels_v1(path)
    assert low_count_warnings(caplog) == []


def test_no_low_count_warning_on_real_data(corpus_path, caplog):
    caplog.set_level(logging.INFO, logger="spacy.ner_trainer")
    # The rarest label of the WNUT-17 dev set, corporation, has 34 entities.
    ner_labels_v1(corpus_path("wnut17/emerging.dev.conll"))
    assert low_count_warnings(caplog) == []


def test_low_count_message_is_the_warning_and_says_nothing_when_all_are_common():
    from spacy_ner_trainer.labels import low_count_message, low_counts, warn_low_counts

    counts = {"PER": 25, "ORG": 20, "GPE": 3}
    assert low_counts(counts) == {"GPE": 3}
    message = low_count_message(counts, "train.jsonl")
    assert message == ("train.jsonl: labels with fewer than 20 examples: GPE (3); "
                       "the model will hardly learn them")
    assert warn_low_counts(counts, "train.jsonl") == message
    assert low_count_message({"PER": 25}, "train.jsonl") is None


# ---------------------------------------------------------------------------------------
# A labels filter checked against the data


def test_a_labels_filter_that_matches_nothing_names_the_labels_the_data_has(corpus_path):
    from spacy_ner_trainer.labels import check_label_filter

    path = corpus_path("wnut17/emerging.dev.conll")
    with pytest.raises(NerDataError) as info:
        check_label_filter(NerCorpus(path, labels=["Foo"]))
    assert str(info.value).startswith(
        f"{path}: no entity has label Foo; the data has: corporation, creative-work, group, "
        "location, person, product")
    assert "--labels" in str(info.value)


def test_a_labels_filter_that_matches_some_warns_of_the_rest(write, caplog):
    from spacy_ner_trainer.labels import check_label_filter

    caplog.set_level(logging.WARNING, logger="spacy.ner_trainer")
    path = write("train.conll", "Ann\tB-per\nin\tO\nRome\tB-loc\n")
    corpus = NerCorpus(path, labels=["PERSON", "Foo", "Bar"], label_map={"per": "PERSON"})
    assert check_label_filter(corpus) == {"PERSON": 1}
    (warning,) = [r.getMessage() for r in caplog.records if "no entity has" in r.getMessage()]
    assert warning == f"{path}: no entity has labels Bar, Foo; the data has: PERSON, loc"
    # Labels all found, or no filter: nothing to say, and the counts come back.
    assert check_label_filter(NerCorpus(path, labels=["loc"])) == {"loc": 1}
    assert check_label_filter(NerCorpus(path)) == {"per": 1, "loc": 1}
    assert len([r for r in caplog.records if "no entity has" in r.getMessage()]) == 1


def test_ner_labels_refuses_a_labels_filter_that_matches_nothing(write):
    path = write("train.conll", "Ann\tB-PER\nin\tO\nRome\tB-LOC\n")
    with pytest.raises(NerDataError, match="no entity has label Foo; the data has: LOC, PER"):
        ner_labels_v1(path, labels=["Foo"])

"""Partial-match scoring: the four SemEval-2013 schemes on hand-made cases, and every count
against nervaluate on a real model's predictions on real dev data."""
from itertools import islice

import pytest
import spacy

from spacy_ner_trainer import NerCorpus
from spacy_ner_trainer.evaluate import evaluate, predict
from spacy_ner_trainer.loop import train
from spacy_ner_trainer.semeval import (COUNTS, SCHEMES, SEMEVAL_HEADER, semeval_examples, semeval_rows, semeval_scores,
                                       token_entities)

# Our scheme names, and nervaluate's.
NERVALUATE = {"strict": "strict", "exact": "exact", "partial": "partial", "type": "ent_type"}


def counts(scores, scheme):
    return tuple(scores[scheme][k] for k in COUNTS)


# The five cases of the SemEval-2013 definition (and nervaluate's README), one gold entity
# each: (gold, predicted, {scheme: (correct, incorrect, partial, missed, spurious)}).
CASES = {
    "same boundaries and label": (
        [(2, 4, "DRUG")], [(2, 4, "DRUG")],
        {"strict": (1, 0, 0, 0, 0), "exact": (1, 0, 0, 0, 0), "partial": (1, 0, 0, 0, 0), "type": (1, 0, 0, 0, 0)}),
    "same boundaries, other label": (
        [(2, 4, "DRUG")], [(2, 4, "BRAND")],
        {"strict": (0, 1, 0, 0, 0), "exact": (1, 0, 0, 0, 0), "partial": (1, 0, 0, 0, 0), "type": (0, 1, 0, 0, 0)}),
    "overlapping, same label": (
        [(2, 4, "DRUG")], [(3, 5, "DRUG")],
        {"strict": (0, 1, 0, 0, 0), "exact": (0, 1, 0, 0, 0), "partial": (0, 0, 1, 0, 0), "type": (1, 0, 0, 0, 0)}),
    "overlapping, other label": (
        [(2, 4, "DRUG")], [(1, 3, "BRAND")],
        {"strict": (0, 1, 0, 0, 0), "exact": (0, 1, 0, 0, 0), "partial": (0, 0, 1, 0, 0), "type": (0, 1, 0, 0, 0)}),
    "missed": (
        [(2, 4, "DRUG")], [],
        {s: (0, 0, 0, 1, 0) for s in SCHEMES}),
    "spurious": (
        [], [(6, 7, "DRUG")],
        {s: (0, 0, 0, 0, 1) for s in SCHEMES}),
    "adjacent is no overlap": (
        [(2, 4, "DRUG")], [(4, 6, "DRUG")],
        {s: (0, 0, 0, 1, 1) for s in SCHEMES}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_scheme_on_hand_made_case(case):
    gold, pred, expected = CASES[case]
    scores = semeval_scores([(gold, pred)])["overall"]
    assert {scheme: counts(scores, scheme) for scheme in SCHEMES} == expected


def test_partial_counts_half_and_precision_recall_follow():
    # All the cases in one example set: the partial scheme gives half credit to its 2 partials.
    pairs = [(gold, pred) for gold, pred, _ in CASES.values()]
    scores = semeval_scores(pairs)["overall"]
    partial = scores["partial"]
    assert counts(scores, "partial") == (2, 0, 2, 2, 2)
    assert (partial["possible"], partial["actual"]) == (6, 6)
    assert partial["p"] == partial["r"] == pytest.approx(3 / 6)
    strict = scores["strict"]
    assert counts(scores, "strict") == (1, 3, 0, 2, 2)
    assert strict["p"] == pytest.approx(1 / 6) and strict["f"] == pytest.approx(1 / 6)


def test_type_takes_the_closest_same_label_entity():
    # The first prediction overlaps both gold DRUGs and claims the nearer, (3, 5); the second
    # then finds (0, 6) free. Claiming the first overlap would leave it spurious and (3, 5) missed.
    gold = [(0, 6, "DRUG"), (3, 5, "DRUG")]
    scores = semeval_scores([(gold, [(3, 6, "DRUG"), (0, 2, "DRUG")])])
    assert counts(scores["overall"], "type") == (2, 0, 0, 0, 0)
    assert counts(scores["overall"], "partial") == (0, 0, 1, 1, 1)
    # Per label, a confusion is a miss of one label and a spurious entity of the other.
    confused = semeval_scores([([(2, 4, "DRUG")], [(2, 4, "BRAND")])])["per_label"]
    assert counts(confused["DRUG"], "strict") == (0, 0, 0, 1, 0)
    assert counts(confused["BRAND"], "strict") == (0, 0, 0, 0, 1)


def test_labels_filter_and_min_overlap():
    pairs = [([(0, 10, "A"), (20, 22, "B")], [(9, 12, "A"), (20, 22, "C")])]
    only_a = semeval_scores(pairs, labels=["A"])
    assert set(only_a["per_label"]) == {"A"}
    assert counts(only_a["overall"], "partial") == (0, 0, 1, 0, 0)
    # One token of ten is 10%: under a 20% threshold it is no overlap.
    strict_overlap = semeval_scores(pairs, labels=["A"], min_overlap=20.0)
    assert counts(strict_overlap["overall"], "partial") == (0, 0, 0, 1, 1)
    with pytest.raises(ValueError, match="min_overlap"):
        semeval_scores(pairs, min_overlap=0)


def test_rows_for_printing():
    gold, pred, _ = CASES["overlapping, same label"]
    scores = semeval_scores([(gold, pred)])
    rows = semeval_rows(scores)
    assert [row[0] for row in rows] == list(SCHEMES)
    assert all(len(row) == len(SEMEVAL_HEADER) for row in rows)
    assert rows[2] == ("partial", 0, 0, 1, 0, 0, "0.500", "0.500", "0.500")
    assert semeval_rows(scores, "DRUG")[3] == ("type", 1, 0, 0, 0, 0, "1.000", "1.000", "1.000")


# Real predictions: a ner trained briefly on BC5CDR (Chemical, Disease), predicting on dev.


@pytest.fixture(scope="module")
def bc5cdr_predictions(corpus_path):
    """(the trained pipeline, dev examples, predicted Examples), trained once per module."""
    nlp = spacy.blank("en")
    train_data = list(islice(NerCorpus(corpus_path("bc5cdr/train.tsv"))(nlp), 200))
    dev = list(islice(NerCorpus(corpus_path("bc5cdr/devel.tsv"))(nlp), 300))
    train(nlp, train_data, n_iter=4, seed=0, patience=0)
    return nlp, dev, predict(nlp, dev)


def bio_tags(doc):
    return [f"{t.ent_iob_}-{t.ent_type_}" if t.ent_iob_ in ("B", "I") else "O" for t in doc]


def test_counts_agree_with_nervaluate_on_real_predictions(bc5cdr_predictions):
    nervaluate = pytest.importorskip("nervaluate")
    _, _, predicted = bc5cdr_predictions
    mine = semeval_examples(predicted)
    labels = sorted(mine["per_label"])
    assert labels == ["Chemical", "Disease"]
    # nervaluate reads the entities from BIO tags itself: our token offsets are checked too.
    theirs = nervaluate.Evaluator([bio_tags(eg.reference) for eg in predicted],
                                  [bio_tags(eg.predicted) for eg in predicted], tags=labels, loader="list").evaluate()
    # The predictions make every kind of count, so that each is compared on something.
    for kind in COUNTS:
        assert any(mine["overall"][s][kind] for s in SCHEMES), kind
    scopes = [(mine["overall"], theirs["overall"])]
    scopes += [(mine["per_label"][label], theirs["entities"][label]) for label in labels]
    assert set(theirs["entities"]) == set(labels)
    for ours, reference in scopes:
        for scheme, name in NERVALUATE.items():
            result = reference[name]
            assert {k: ours[scheme][k] for k in (*COUNTS, "possible", "actual")} == \
                {k: getattr(result, k) for k in (*COUNTS, "possible", "actual")}, scheme
            assert (ours[scheme]["p"], ours[scheme]["r"], ours[scheme]["f"]) == \
                (result.precision, result.recall, result.f1), scheme


def test_evaluate_fills_semeval_and_strict_is_spacy_scorer(bc5cdr_predictions):
    nlp, dev, predicted = bc5cdr_predictions
    evaluation = evaluate(nlp, dev)
    assert evaluation.semeval == semeval_scores(
        [(token_entities(eg.reference), token_entities(eg.predicted)) for eg in predicted])
    strict = evaluation.semeval["overall"]["strict"]
    assert (strict["p"], strict["r"], strict["f"]) == pytest.approx(
        (evaluation.scores["ents_p"], evaluation.scores["ents_r"], evaluation.scores["ents_f"]))
    for label, scores in evaluation.per_label.items():
        assert evaluation.semeval["per_label"][label]["strict"]["f"] == pytest.approx(scores["f"])
        assert evaluation.semeval["per_label"][label]["strict"]["possible"] == scores["support"]

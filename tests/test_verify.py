"""verify(): scores per label and overall, mismatches, the disk round trip, report.ok and the
JSON report, on a pipeline trained the recipe's way."""
import json

import pytest
import spacy
from spacy.training import Example

from spacy_ner_trainer import NerCorpus, VerificationReport, verify
from spacy_ner_trainer.verify import ROUND_TRIP_EXAMPLES
from pipelines import RECIPE_DATA, recipe_trained

# A label the recipe's model never saw: it cannot find FRUIT.
UNKNOWN = ("Shaka Khan ate a mango.", {"entities": [(0, 10, "PERSON"), (17, 22, "FRUIT")]})
UNKNOWN_TOO = ("A mango in Berlin.", {"entities": [(2, 7, "FRUIT"), (11, 17, "LOC")]})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(nlp, saved path) of the recipe: a blank "en" ner trained on the two sentences."""
    nlp, _, path = recipe_trained(tmp_path_factory)
    return nlp, path


def spans(doc):
    return {(e.start_char, e.end_char, e.label_) for e in doc.ents}


def expected_scores(nlp, data):
    """Micro precision, recall and F and per-label recall, computed here from the predictions."""
    tp = n_gold = n_pred = 0
    per_label = {}
    for text, annotations in data:
        gold = {tuple(e) for e in annotations["entities"]}
        pred = spans(nlp(text))
        tp += len(gold & pred)
        n_gold += len(gold)
        n_pred += len(pred)
        for ent in gold:
            found, support = per_label.get(ent[2], (0, 0))
            per_label[ent[2]] = (found + (ent in pred), support + 1)
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f, per_label


def test_perfect_on_the_training_data(trained):
    nlp, _ = trained
    report = verify(nlp, RECIPE_DATA)
    assert isinstance(report, VerificationReport)
    assert report.n_examples == 2
    assert (report.precision, report.recall, report.f) == (1.0, 1.0, 1.0)
    assert set(report.per_label) == {"PERSON", "LOC"}
    assert report.per_label["LOC"]["support"] == 2
    assert report.per_label["PERSON"]["support"] == 1
    assert all(s["r"] == 1.0 for s in report.per_label.values())
    assert report.mismatches == []
    assert report.round_trip_ok is True
    assert report.round_trip_diffs == []
    assert report.components_ok is None  # no reference given
    assert report.ok


def test_missed_entity_is_a_mismatch(trained):
    nlp, _ = trained
    data = RECIPE_DATA + [UNKNOWN, UNKNOWN_TOO]
    report = verify(nlp, data, min_recall=0.0)
    p, r, f, per_label = expected_scores(nlp, data)
    assert r < 1.0  # the FRUIT entities are missed
    assert report.recall == pytest.approx(r)
    assert report.precision == pytest.approx(p)
    assert report.f == pytest.approx(f)
    assert set(report.per_label) == set(per_label)
    for label, (found, support) in per_label.items():
        assert report.per_label[label]["support"] == support
        assert report.per_label[label]["r"] == pytest.approx(found / support)
    assert report.per_label["FRUIT"]["r"] == 0.0
    # Every example whose entities differ is listed, with its gold entities.
    mismatched = {m["text"]: m for m in report.mismatches}
    assert UNKNOWN[0] in mismatched and UNKNOWN_TOO[0] in mismatched
    gold = {tuple(g[:3]) for g in mismatched[UNKNOWN[0]]["gold"]}
    assert (17, 22, "FRUIT") in gold
    predicted = {tuple(g[:3]) for g in mismatched[UNKNOWN[0]]["predicted"]}
    assert (17, 22, "FRUIT") not in predicted
    assert not set(mismatched) & {t for t, _ in RECIPE_DATA}


def test_ok_against_min_recall(trained):
    nlp, _ = trained
    data = RECIPE_DATA + [UNKNOWN]
    recall = verify(nlp, data, min_recall=0.0, round_trip=False).recall
    assert 0.0 < recall < 1.0
    assert verify(nlp, data, min_recall=recall, round_trip=False).ok
    assert not verify(nlp, data, min_recall=recall + 0.01, round_trip=False).ok
    assert not verify(nlp, RECIPE_DATA, min_recall=1.01, round_trip=False).ok


def test_to_dict_is_json(trained):
    nlp, _ = trained
    report = verify(nlp, RECIPE_DATA + [UNKNOWN], min_recall=0.9)
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["ok"] is report.ok is False
    assert as_dict["recall"] == pytest.approx(report.recall)
    assert as_dict["precision"] == pytest.approx(report.precision)
    assert as_dict["n_examples"] == 3
    assert as_dict["min_recall"] == 0.9
    assert as_dict["round_trip_ok"] is True
    assert set(as_dict["per_label"]) == {"PERSON", "LOC", "FRUIT"}
    assert [m["text"] for m in as_dict["mismatches"]] == [UNKNOWN[0]]


def test_no_round_trip(trained):
    nlp, _ = trained
    report = verify(nlp, RECIPE_DATA, round_trip=False)
    assert report.round_trip_ok is None
    assert report.ok


def test_round_trip_against_a_saved_copy(trained):
    nlp, path = trained
    report = verify(nlp, RECIPE_DATA, round_trip=path)
    assert report.round_trip_ok is True
    assert report.ok


def test_round_trip_catches_a_different_copy(trained, tmp_path):
    # A "saved copy" that predicts nothing: the check must notice.
    nlp, _ = trained
    spacy.blank("en").to_disk(tmp_path / "blank")
    report = verify(nlp, RECIPE_DATA, round_trip=tmp_path / "blank")
    assert report.round_trip_ok is False
    assert {d["text"] for d in report.round_trip_diffs} == {t for t, _ in RECIPE_DATA}
    assert report.recall == 1.0
    assert not report.ok


def test_round_trip_compares_the_first_examples(trained, tmp_path):
    # The reloaded copy predicts again only the first ROUND_TRIP_EXAMPLES examples: each of
    # them differs here (the copy finds nothing), none after them is compared.
    nlp, _ = trained
    spacy.blank("en").to_disk(tmp_path / "blank")
    data = [(f"{text} ({i})", annotations) for i in range(ROUND_TRIP_EXAMPLES // 2 + 10)
            for text, annotations in RECIPE_DATA]
    report = verify(nlp, data, round_trip=tmp_path / "blank")
    assert report.n_examples == len(data) > ROUND_TRIP_EXAMPLES
    assert [d["text"] for d in report.round_trip_diffs] == [text for text, _ in data[:ROUND_TRIP_EXAMPLES]]


def test_takes_examples_and_paths(trained, tmp_path):
    nlp, _ = trained
    data = RECIPE_DATA + [UNKNOWN]
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps([t, a]) + "\n" for t, a in data), encoding="utf8")
    examples = [Example.from_dict(nlp.make_doc(t), a) for t, a in data]
    expected = verify(nlp, data, min_recall=0.0, round_trip=False).to_dict()
    for form in (examples, path, str(path), NerCorpus(path)):
        got = verify(nlp, form, min_recall=0.0, round_trip=False).to_dict()
        assert got == expected


def test_does_not_use_earlier_predictions(trained):
    # Examples whose predicted side already holds entities are scored on fresh predictions.
    nlp, _ = trained
    text, annotations = UNKNOWN
    predicted = nlp.make_doc(text)
    predicted.ents = [predicted.char_span(17, 22, label="FRUIT")]
    example = Example(predicted, Example.from_dict(nlp.make_doc(text), annotations).reference)
    report = verify(nlp, [example], min_recall=0.0, round_trip=False)
    assert report.per_label["FRUIT"]["r"] == 0.0


def test_many_mismatches_are_counted(trained):
    nlp, _ = trained
    data = [(f"{i} mangoes. A mango.", {"entities": [(len(str(i)) + 12, len(str(i)) + 17, "FRUIT")]})
            for i in range(60)]
    report = verify(nlp, data, min_recall=0.0, round_trip=False)
    as_dict = json.loads(json.dumps(report.to_dict()))
    assert as_dict["n_mismatches"] == 60
    assert 0 < len(as_dict["mismatches"]) <= 60

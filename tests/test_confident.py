"""The kept original's confident pass: its margin, calibrated on the training data."""
import math
from typing import List

import pytest
import spacy
from spacy.language import Language
from spacy.training import Example

from spacy_ner_trainer import train
from spacy_ner_trainer.confident import MARGINS, add_confident_pass, calibrate, overlap
from test_rehearse import BASE_DATA, NEW, NEW_TEMPLATES, OLD, make_data


@pytest.fixture(scope="module")
def base() -> Language:
    """A blank "en" whose ner learned FRUIT."""
    nlp = spacy.blank("en")
    train(nlp, BASE_DATA, n_iter=12, seed=0)
    return nlp


@pytest.fixture(scope="module")
def examples(base) -> List[Example]:
    """Training data whose gold has ANIMALs and FRUITs: the base's FRUITs overlap gold entities."""
    data = make_data(NEW_TEMPLATES, 40, {NEW, OLD}, seed=5)
    return [Example.from_dict(base.make_doc(text), annotations) for text, annotations in data]


def test_overlap_at_margin_0_is_the_share_of_gold_entities_the_original_overlaps(base, examples):
    ner = base.get_pipe("ner")
    bias = ner.model.get_ref("upper").get_param("b").copy()
    gold = [eg.reference for eg in examples]
    predicted = [ner(base.make_doc(doc.text)) for doc in gold]
    n = sum(len(doc.ents) for doc in gold)
    hits = sum(any(e.start < g.end and g.start < e.end for e in doc.ents) for doc, ref in zip(predicted, gold)
               for g in ref.ents)
    assert n // 4 <= hits < n, "the base should find some of the gold entities, not all"
    assert overlap(ner, [OLD], 0.0, gold) == pytest.approx(hits / n)
    assert overlap(ner, [OLD], 1e3, gold) == 0.0
    assert overlap(ner, [], 0.0, gold) == 0.0  # no kept label: the pass starts nothing
    assert (ner.model.get_ref("upper").get_param("b") == bias).all()  # the ner is as it was


def test_calibrate_picks_the_smallest_margin_whose_overlap_fits(base, examples):
    ner = base.get_pipe("ner")
    gold = [eg.reference for eg in examples]
    table = [overlap(ner, [OLD], margin, gold) for margin in MARGINS]
    # What the bisection relies on: the overlap never rises with the margin.
    assert all(a >= b for a, b in zip(table, table[1:])) and table[0] > table[-1]
    for budget in sorted({0.0, *table, table[0] / 2, 1.0}):
        fitting = [margin for margin, share in zip(MARGINS, table) if share <= budget]
        assert calibrate(ner, [OLD], examples, budget) == (fitting[0] if fitting else math.inf), budget


def test_no_pass_when_no_margin_fits_or_no_entities(base, examples):
    nlp = spacy.blank("en")
    nlp.add_pipe("ner", source=base)
    assert add_confident_pass(nlp, [OLD], "ner", examples, max_overlap=-1.0) is None
    assert nlp.pipe_names == ["ner"]
    unannotated = [Example(eg.predicted, base.make_doc(eg.reference.text)) for eg in examples]
    assert calibrate(nlp.get_pipe("ner"), [OLD], unannotated) == math.inf
    assert add_confident_pass(nlp, [OLD], "ner", examples, margin=2.0) == 2.0
    assert nlp.pipe_names == ["ner_confident", "ner"]
    assert add_confident_pass(nlp, [OLD], "ner", examples, margin=math.inf, name="other") is None

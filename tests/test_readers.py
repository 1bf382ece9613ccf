"""spacy-ner-trainer.NerCorpus.v1: real corpora, every input format, every kind of bad input,
the lenient policies, streaming, and property-based round trips."""
import json
import logging
import tempfile
import tracemalloc
import zlib
from collections import Counter
from pathlib import Path

import pytest
import spacy
import srsly
from hypothesis import example, given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from spacy_ner_trainer import NerCorpus, NerDataError, ner_corpus_v1
from spacy_ner_trainer.labels import ner_labels_v1


def ents(doc):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def token_ents(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


def conll_sentences(path: Path):
    """The first column of a token<TAB>tag file, split on blank or whitespace-only lines:
    an independent reading of the file, to compare the reader with."""
    sentences, words = [], []
    for line in path.read_text(encoding="utf8").split("\n"):
        if line.strip():
            words.append(line.split("\t")[0])
        elif words:
            sentences.append(words)
            words = []
    if words:
        sentences.append(words)
    return sentences


# ---------------------------------------------------------------------------------------
# Real corpora: the counts their SOURCE.md publishes


def test_real_corpus_matches_published_counts(corpus_path, reader_nlp, published):
    path = corpus_path(published.file)
    n_sentences = n_tokens = 0
    labels = Counter()
    for eg in NerCorpus(path)(reader_nlp):
        n_sentences += 1
        n_tokens += len(eg.reference)
        labels.update(ent.label_ for ent in eg.reference.ents)
    assert n_sentences == published.sentences
    assert n_tokens == published.tokens
    assert dict(labels) == published.entities


def test_wnut17_train_tab_only_separators_split_sentences(corpus_path, read):
    path = corpus_path("wnut17/wnut17train.conll")
    text = path.read_text(encoding="utf8")
    lines = text.split("\n")
    # The quirk SOURCE.md describes: 2,394 separators are a single TAB, 1,000 are empty.
    assert lines.count("\t") == 2394
    # spaCy's `ner` converter splits sentences on "\n\n" (conll_ner_to_docs): it merges
    # the sentences that a TAB-only line separates.
    assert len([s for s in text.strip().split("\n\n") if s.strip()]) == 1000
    examples = read(path)
    assert len(examples) == 3394
    assert not any("\t" in t.text or not t.text.strip() for eg in examples for t in eg.predicted)


@pytest.mark.slow
def test_spacy_converter_merges_wnut17_train_sentences(corpus_path):
    from spacy.training.converters import conll_ner_to_docs

    path = corpus_path("wnut17/wnut17train.conll")
    docs = list(conll_ner_to_docs(path.read_text(encoding="utf8"), n_sents=1, no_print=True))
    assert len(docs) == 1000
    assert sum(len(doc.ents) for doc in docs) == 1975


@pytest.mark.parametrize("file", ["wnut17/emerging.dev.conll", "ncbi-disease/devel.tsv"])
def test_real_conll_predicted_docs_hold_the_files_words(corpus_path, read, file):
    path = corpus_path(file)
    expected = conll_sentences(path)
    examples = read(path)
    assert len(examples) == len(expected)
    for eg, words in zip(examples, expected):
        assert [t.text for t in eg.predicted] == words
        assert [t.text for t in eg.reference] == words


def test_real_conll_reads_through_a_directory(corpus_path, read):
    folder = corpus_path("ncbi-disease/devel.tsv").parent
    # devel.tsv, test.tsv, train.tsv in sorted order (SOURCE.md is not a supported file).
    examples = read(folder, limit=923 + 2)
    assert len(examples) == 925
    first_test = conll_sentences(folder / "test.tsv")[0]
    assert [t.text for t in examples[923].predicted] == first_test


# ---------------------------------------------------------------------------------------
# Character-offset formats: seed tuples and span records


def test_tuples_jsonl(write_jsonl, read):
    path = write_jsonl("train.jsonl", [
        ["I like London.", {"entities": [[7, 13, "GPE"]]}],
        ["Ann met Bob in New York.", {"entities": [[0, 3, "PER"], [8, 11, "PER"], [15, 23, "GPE"]]}],
        ["Nothing here.", {"entities": []}],
        ["No entities key.", {}],
    ])
    examples = read(path)
    assert [eg.reference.text for eg in examples] == [
        "I like London.", "Ann met Bob in New York.", "Nothing here.", "No entities key."]
    assert ents(examples[0].reference) == [(7, 13, "GPE")]
    assert ents(examples[1].reference) == [(0, 3, "PER"), (8, 11, "PER"), (15, 23, "GPE")]
    assert ents(examples[2].reference) == []
    assert all(t.ent_iob_ == "O" for t in examples[2].reference)
    assert all(isinstance(eg, Example) for eg in examples)


def test_tuples_multiline_json_array(write, read):
    records = [
        ["I like London.", {"entities": [[7, 13, "GPE"]]}],
        ["Bob visited Paris.", {"entities": [[0, 3, "PER"], [12, 17, "GPE"]]}],
    ]
    path = write("train.json", json.dumps(records, indent=2))
    examples = read(path)
    assert [ents(eg.reference) for eg in examples] == [
        [(7, 13, "GPE")], [(0, 3, "PER"), (12, 17, "GPE")]]


def test_single_line_json_array(write, read):
    records = [["I like London.", {"entities": [[7, 13, "GPE"]]}]]
    examples = read(write("train.json", json.dumps(records)))
    assert [ents(eg.reference) for eg in examples] == [[(7, 13, "GPE")]]


def test_prodigy_spans_jsonl(write_jsonl, read):
    path = write_jsonl("annotations.jsonl", [
        {"text": "I like London.", "spans": [{"start": 7, "end": 13, "label": "GPE",
                                            "token_start": 2, "token_end": 2}],
         "answer": "accept", "_input_hash": 1, "_task_hash": 2},
        {"text": "Nothing here.", "spans": [], "answer": "accept"},
        {"text": "No spans key."},
    ])
    examples = read(path, format="spans")
    assert [ents(eg.reference) for eg in examples] == [[(7, 13, "GPE")], [], []]


@pytest.mark.parametrize("entities", [
    [[0, 3, "PER"], [12, 17, "GPE"]],
    [{"start": 0, "end": 3, "label": "PER"}, {"start": 12, "end": 17, "label": "GPE"}],
], ids=["lists", "dicts"])
def test_span_records_take_entities_lists_or_dicts(write_jsonl, read, entities):
    path = write_jsonl("train.jsonl", [{"text": "Bob visited Paris.", "entities": entities}])
    (eg,) = read(path)
    assert ents(eg.reference) == [(0, 3, "PER"), (12, 17, "GPE")]


def test_prodigy_reject_and_ignore_are_skipped_and_counted(write_jsonl, read, summaries):
    path = write_jsonl("annotations.jsonl", [
        {"text": "I like London.", "spans": [{"start": 7, "end": 13, "label": "GPE"}], "answer": "reject"},
        {"text": "I like Paris.", "spans": [{"start": 7, "end": 12, "label": "GPE"}], "answer": "accept"},
        {"text": "I like Rome.", "spans": [{"start": 7, "end": 11, "label": "GPE"}], "answer": "ignore"},
        {"text": "I like Oslo.", "spans": [{"start": 7, "end": 11, "label": "GPE"}]},
    ])
    examples = read(path)
    assert [eg.reference.text for eg in examples] == ["I like Paris.", "I like Oslo."]
    (summary,) = summaries()
    assert "reject" in summary and ": 2 " in summary
    assert f"{path}:1" in summary and f"{path}:3" in summary


def test_forced_format_rejects_the_other_record_shape(write_jsonl, read):
    tuples = write_jsonl("tuples.jsonl", [["I like London.", {"entities": [[7, 13, "GPE"]]}]])
    spans = write_jsonl("spans.jsonl", [{"text": "I like London.", "spans": []}])
    assert len(read(tuples, format="tuples")) == 1
    assert len(read(spans, format="spans")) == 1
    with pytest.raises(NerDataError) as err:
        read(tuples, format="spans")
    assert f"{tuples}:1:" in str(err.value) and '"spans"' in str(err.value)
    with pytest.raises(NerDataError) as err:
        read(spans, format="tuples")
    assert f"{spans}:1:" in str(err.value) and '"entities"' in str(err.value)


def test_auto_format_from_content_is_logged(write, read, caplog):
    caplog.set_level(logging.INFO, logger="spacy.ner_trainer")
    jsonl = write("train.data", '["I like London.", {"entities": [[7, 13, "GPE"]]}]\n')
    conll = write("train.txt", "I\tO\nlike\tO\nLondon\tB-GPE\n")
    assert [ents(eg.reference) for eg in read(jsonl)] == [[(7, 13, "GPE")]]
    assert [token_ents(eg.reference) for eg in read(conll)] == [[(2, 3, "GPE")]]
    messages = [r.getMessage() for r in caplog.records if r.name == "spacy.ner_trainer"]
    assert f"{jsonl}: reading as json (decided from content)" in messages
    assert f"{conll}: reading as conll (decided from content)" in messages


def test_a_misleading_suffix_is_overridden_by_format(write, read):
    path = write("train.json", "I\tO\nlike\tO\nLondon\tB-GPE\n")
    with pytest.raises(NerDataError):
        read(path)
    (eg,) = read(path, format="conll")
    assert token_ents(eg.reference) == [(2, 3, "GPE")]


# ---------------------------------------------------------------------------------------
# CoNLL / IOB


def test_conll_predicted_doc_is_never_retokenized(write, read):
    words = ["do", "n't", "U.S.", "@paulwalk", "http://t.co/x", "22-oxacalcitriol", ":)",
             "&amp;", "New", "York-based", "emoji😀"]
    tags = ["O"] * 8 + ["B-LOC", "I-LOC", "O"]
    path = write("tweets.conll", "".join(f"{w}\t{t}\n" for w, t in zip(words, tags)))
    (eg,) = read(path)
    assert [t.text for t in eg.predicted] == words
    assert [t.text for t in eg.reference] == words
    assert token_ents(eg.reference) == [(8, 10, "LOC")]


def test_conll_docstart_lines_mark_documents_and_never_become_tokens(write, read):
    path = write("train.conll", (
        "-DOCSTART- -X- -X- O\n\n"
        "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
        "-DOCSTART- -X- -X- O\n"
        "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n"
        "-DOCSTART- -X- -X- O\n"
    ))
    examples = read(path)
    assert [[t.text for t in eg.predicted] for eg in examples] == [
        ["EU", "rejects"], ["Peter", "Blackburn"]]
    assert [token_ents(eg.reference) for eg in examples] == [[(0, 1, "ORG")], [(0, 2, "PER")]]


def test_conll2003_space_separated_four_columns(write, read):
    path = write("eng.train", (
        "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\ncall NN I-NP O\n"
        "to TO B-VP O\nboycott VB I-VP O\nBritish JJ B-NP B-MISC\nlamb NN I-NP O\n. . O O\n"
    ))
    (eg,) = read(path, format="conll")
    assert [t.text for t in eg.predicted] == [
        "EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]
    assert token_ents(eg.reference) == [(0, 1, "ORG"), (2, 3, "MISC"), (6, 7, "MISC")]


def test_conll_whitespace_only_lines_separate_sentences(write, read):
    path = write("train.conll", "Ann\tB-person\nsmiled\tO\n\t\nBob\tB-person\n   \nleft\tO\n \t \n")
    examples = read(path)
    assert [[t.text for t in eg.predicted] for eg in examples] == [
        ["Ann", "smiled"], ["Bob"], ["left"]]


def test_conll_tab_columns_keep_spaces_in_tokens_and_a_bom_is_not_a_token(write, read):
    # A bare -DOCSTART- line, a token with a space in a tab-separated file, an empty first
    # column (an empty token, dropped), and a byte-order mark before the first token.
    path = write("train.tsv", (
        "\ufeff-DOCSTART-\n\nNew York\tB-LOC\ncity\tO\n\tNN\tO\n-DOCSTART-\n"
        "Ann  \t PER-tag\tB-PER\n"
    ))
    examples = read(path)
    assert [[t.text for t in eg.predicted] for eg in examples] == [["New York", "city"], ["Ann"]]
    assert [token_ents(eg.reference) for eg in examples] == [[(0, 1, "LOC")], [(0, 1, "PER")]]


def test_conll_crlf_line_ends(write, read):
    path = write("train.conll", "New\tB-LOC\r\nYork\tI-LOC\r\n\r\nOK\tO\r\n")
    examples = read(path)
    assert [[t.text for t in eg.predicted] for eg in examples] == [["New", "York"], ["OK"]]
    assert token_ents(examples[0].reference) == [(0, 2, "LOC")]


def test_conll_empty_tokens_tagged_o_are_dropped_and_counted(write, read, summaries):
    path = write("train.conll", "Ann\tB-PER\n\tO\nsmiled\tO\n \tO\n.\tO\n")
    (eg,) = read(path)
    assert [t.text for t in eg.predicted] == ["Ann", "smiled", "."]
    assert token_ents(eg.reference) == [(0, 1, "PER")]
    (summary,) = summaries()
    assert ": 2 " in summary
    assert f"{path}:2" in summary and f"{path}:4" in summary


def test_conll_iob1_is_detected_and_decoded(write, read, caplog):
    caplog.set_level(logging.INFO, logger="spacy.ner_trainer")
    # CoNLL-2003 as first published: I- starts an entity, B- only separates two adjacent
    # entities of one type, and a change of type after I- starts a new entity.
    path = write("eng.iob1", (
        "U.N. NNP I-NP I-ORG\nofficial NN I-NP O\nEkeus NNP I-NP I-PER\nheads VBZ I-VP O\n"
        "for IN I-PP O\nBaghdad NNP I-NP I-LOC\n. . O O\n\n"
        "German JJ I-NP I-MISC\nBritish JJ I-NP B-MISC\nLondon NNP I-NP I-LOC\n"
        "Stock NNP I-NP I-ORG\nExchange NNP I-NP I-ORG\n"
    ))
    examples = read(path)
    assert [token_ents(eg.reference) for eg in examples] == [
        [(0, 1, "ORG"), (2, 3, "PER"), (5, 6, "LOC")],
        [(0, 1, "MISC"), (1, 2, "MISC"), (2, 3, "LOC"), (3, 5, "ORG")],
    ]
    assert any("IOB1" in r.getMessage() for r in caplog.records if r.name == "spacy.ner_trainer")


@pytest.mark.parametrize("name,single,begin,inside,last", [
    ("train.biluo", "U", "B", "I", "L"),
    ("train.bioes", "S", "B", "I", "E"),
])
def test_conll_biluo_and_bioes(write, read, name, single, begin, inside, last):
    path = write(name, (
        f"EU\t{single}-ORG\nsays\tO\nNew\t{begin}-LOC\nYork\t{inside}-LOC\nCity\t{last}-LOC\n"
        f"and\tO\nParis\t{single}-LOC\n\n"
        f"Ann\t{begin}-PER\nLee\t{last}-PER\nBob\t{single}-PER\n"
    ))
    examples = read(path)
    assert [token_ents(eg.reference) for eg in examples] == [
        [(0, 1, "ORG"), (2, 5, "LOC"), (6, 7, "LOC")],
        [(0, 2, "PER"), (2, 3, "PER")],
    ]


def test_conll_scheme_is_decided_per_file(write, read):
    write("corpus/a.conll", "German\tI-MISC\nBritish\tB-MISC\n")  # IOB1
    write("corpus/b.conll", "New\tB-LOC\nYork\tL-LOC\nEU\tU-ORG\n")  # BILUO
    folder = write("corpus/c.conll", "New\tB-LOC\nYork\tI-LOC\nEU\tB-ORG\n").parent  # IOB2
    examples = read(folder)
    assert [token_ents(eg.reference) for eg in examples] == [
        [(0, 1, "MISC"), (1, 2, "MISC")],
        [(0, 2, "LOC"), (2, 3, "ORG")],
        [(0, 2, "LOC"), (2, 3, "ORG")],
    ]


def test_conll_forced_scheme_iob1_reads_iob2(write, read):
    path = write("train.conll", "New\tB-LOC\nYork\tI-LOC\nEU\tB-ORG\nrules\tO\n")
    (eg,) = read(path, scheme="iob1")
    assert token_ents(eg.reference) == [(0, 2, "LOC"), (2, 3, "ORG")]


def test_conll_lowercase_hyphenated_labels(write, read):
    path = write("train.conll", "Turn\tB-creative-work\nUp\tI-creative-work\nGreen\tI-creative-work\n")
    (eg,) = read(path)
    assert token_ents(eg.reference) == [(0, 3, "creative-work")]


# ---------------------------------------------------------------------------------------
# DocBin


def _docbin_doc(vocab):
    return Doc(
        vocab,
        words=["Ann", "met", "Bob", "in", "Rome", ".", "Then", "Ann", "left", "."],
        spaces=[True, True, True, True, False, True, True, True, False, False],
        sent_starts=[True, False, False, False, False, False, True, False, False, False],
        ents=["B-PER", "O", "B-PER", "O", "B-LOC", "O", "O", "B-PER", None, "O"],
    )


def test_docbin_round_trip(tmp_path, read):
    doc = _docbin_doc(spacy.blank("en").vocab)
    path = tmp_path / "train.spacy"
    DocBin(docs=[doc]).to_disk(path)
    (eg,) = read(path)
    assert [t.text for t in eg.predicted] == [t.text for t in doc]
    assert eg.predicted.text == doc.text == "Ann met Bob in Rome. Then Ann left."
    assert token_ents(eg.reference) == [(0, 1, "PER"), (2, 3, "PER"), (4, 5, "LOC"), (7, 8, "PER")]
    assert [t.ent_iob_ for t in eg.reference] == [t.ent_iob_ for t in doc]
    assert eg.reference[8].ent_iob_ == ""  # missing annotation stays missing
    assert not eg.predicted.ents


def test_docbin_is_detected_from_content(tmp_path, read):
    doc = _docbin_doc(spacy.blank("en").vocab)
    path = tmp_path / "train.bin"
    DocBin(docs=[doc]).to_disk(path)
    (eg,) = read(path)
    assert len(eg.reference.ents) == 4


def test_docbin_label_map_keeps_missing_annotation(tmp_path, read):
    doc = _docbin_doc(spacy.blank("en").vocab)
    path = tmp_path / "train.spacy"
    DocBin(docs=[doc]).to_disk(path)
    (eg,) = read(path, label_map={"PER": "PERSON"})
    assert token_ents(eg.reference) == [
        (0, 1, "PERSON"), (2, 3, "PERSON"), (4, 5, "LOC"), (7, 8, "PERSON")]
    # Renaming labels must not turn a token with missing annotation into O.
    assert [t.ent_iob_ for t in eg.reference] == [t.ent_iob_ for t in doc]


def test_docbin_labels_filter(tmp_path, read):
    doc = _docbin_doc(spacy.blank("en").vocab)
    path = tmp_path / "train.spacy"
    DocBin(docs=[doc]).to_disk(path)
    (eg,) = read(path, labels=["LOC"])
    assert token_ents(eg.reference) == [(4, 5, "LOC")]


def test_docbin_max_length_splits_into_sentences(tmp_path, read):
    doc = _docbin_doc(spacy.blank("en").vocab)
    path = tmp_path / "train.spacy"
    DocBin(docs=[doc]).to_disk(path)
    examples = read(path, max_length=8)
    assert [[t.text for t in eg.predicted] for eg in examples] == [
        ["Ann", "met", "Bob", "in", "Rome", "."], ["Then", "Ann", "left", "."]]
    assert [token_ents(eg.reference) for eg in examples] == [
        [(0, 1, "PER"), (2, 3, "PER"), (4, 5, "LOC")], [(1, 2, "PER")]]


# ---------------------------------------------------------------------------------------
# Directories, labels, label_map, limit, max_length


def test_directory_reads_supported_files_in_sorted_order(write, read):
    write("corpus/b.jsonl", '["from b", {"entities": []}]\n')
    write("corpus/a.conll", "from\tO\na\tO\n")
    write("corpus/sub/c.json", '[["from c", {"entities": []}]]')
    write("corpus/README.md", "not data\n")
    write("corpus/notes.txt", "not data\n")
    write("corpus/.hidden.jsonl", '["hidden", {"entities": []}]\n')
    examples = read(write("corpus/z.jsonl", '["from z", {"entities": []}]\n').parent)
    assert [[t.text for t in eg.predicted] for eg in examples] == [
        ["from", "a"], ["from", "b"], ["from", "c"], ["from", "z"]]


def test_label_map_renames_and_labels_keep_only(write_jsonl, read):
    path = write_jsonl("train.jsonl", [
        ["Ann met Bob in Rome.", {"entities": [[0, 3, "per"], [8, 11, "per"], [15, 19, "loc"]]}],
    ])
    (eg,) = read(path, label_map={"per": "PERSON", "loc": "GPE"})
    assert ents(eg.reference) == [(0, 3, "PERSON"), (8, 11, "PERSON"), (15, 19, "GPE")]
    (eg,) = read(path, label_map={"per": "PERSON"}, labels=["PERSON"])
    assert ents(eg.reference) == [(0, 3, "PERSON"), (8, 11, "PERSON")]
    assert eg.reference[4].ent_iob_ == "O"  # 'Rome': a dropped label is not an entity


def test_label_map_and_labels_on_conll(write, read):
    path = write("train.conll", "Ann\tB-per\nin\tO\nRome\tB-loc\n")
    (eg,) = read(path, label_map={"per": "PERSON"}, labels=["PERSON"])
    assert token_ents(eg.reference) == [(0, 1, "PERSON")]


def test_limit_stops_across_files(write, read):
    write("corpus/a.jsonl", '["a1", {"entities": []}]\n["a2", {"entities": []}]\n')
    folder = write("corpus/b.jsonl", '["b1", {"entities": []}]\n["b2", {"entities": []}]\n').parent
    assert [eg.reference.text for eg in read(folder, limit=3)] == ["a1", "a2", "b1"]
    assert len(read(folder, limit=0)) == 4


def test_limit_does_not_read_past_the_limit(write, read):
    path = write("train.jsonl", '["a1", {"entities": []}]\n["a2", {"entities": []}]\nnot json\n')
    assert [eg.reference.text for eg in read(path, limit=2)] == ["a1", "a2"]


def test_max_length_skips_long_examples_without_sentences(write, read, summaries):
    path = write("train.conll", "a\tO\nb\tO\nc\tO\n\nd\tO\ne\tO\nf\tO\ng\tO\nh\tO\n\ni\tO\n")
    examples = read(path, max_length=4)
    assert [[t.text for t in eg.predicted] for eg in examples] == [["a", "b", "c"], ["i"]]
    (summary,) = summaries()
    assert "max_length=4" in summary and ": 1 " in summary and f"{path}:5" in summary


def test_reader_options_are_checked_when_the_corpus_is_made(write):
    path = write("train.jsonl", '["a", {"entities": []}]\n')
    for bad in ({"format": "xml"}, {"on_misaligned": "fix"}, {"on_overlap": "merge"},
                {"scheme": "iobes2"}):
        with pytest.raises(ValueError, match=list(bad)[0]):
            NerCorpus(path, **bad)


def test_registered_function_returns_a_corpus(write, nlp):
    path = write("train.jsonl", '["I like London.", {"entities": [[7, 13, "GPE"]]}]\n')
    corpus = ner_corpus_v1(path, limit=1)
    assert callable(corpus)
    assert [ents(eg.reference) for eg in corpus(nlp)] == [[(7, 13, "GPE")]]


# ---------------------------------------------------------------------------------------
# Bad data: one exception type, naming the file, the line and the problem


def raises_at(read, path, line, *words, **kwargs):
    with pytest.raises(NerDataError) as info:
        read(path, **kwargs)
    err = info.value
    message = str(err)
    assert isinstance(err, ValueError)
    assert f"{path}:{line}:" in message, message
    assert err.path == str(path) and err.line == line
    for word in words:
        assert word in message, (word, message)
    return message


def test_error_invalid_json_line(write, read):
    path = write("train.jsonl", (
        '["I like London.", {"entities": [[7, 13, "GPE"]]}]\n'
        '\n'
        '["I like Paris.", {"entities": [[7, 12, "GPE"]]]\n'
    ))
    raises_at(read, path, 3, "invalid JSON")


def test_error_invalid_json_first_line(write, read):
    path = write("train.jsonl", '{"text": "I like London.", "spans": [}\n["a", {}]\n')
    raises_at(read, path, 1, "invalid JSON")


def test_error_invalid_json_inside_a_multiline_array(write, read):
    path = write("train.json", (
        '[\n'
        '  ["I like London.", {"entities": [[7, 13, "GPE"]]}],\n'
        '  ["I like Paris.",\n'
        '   {"entities": [[7, 12 "GPE"]]}]\n'
        ']\n'
    ))
    raises_at(read, path, 4, "invalid JSON")


def test_error_json_array_not_closed(write, read):
    path = write("train.json", '[\n["a", {"entities": []}],\n["b", {"entities": []}]\n')
    with pytest.raises(NerDataError) as info:
        read(path)
    assert str(path) in str(info.value) and "invalid JSON" in str(info.value)


@pytest.mark.parametrize("record,words", [
    (["I like London."], ["expected", "entities"]),
    (["I like London.", ["GPE"]], ["expected", "entities"]),
    ([1, {"entities": []}], ["expected"]),
    (42, ["expected"]),
    ({"spans": []}, ['"text"']),
    ({"text": 7, "spans": []}, ['"text"']),
    ({"text": "I like London.", "spans": {"start": 7, "end": 13}}, ["must be a list"]),
    (["I like London.", {"entities": "London"}], ["must be a list"]),
    (["I like London.", {"entities": [[7, 13]]}], ["expected a span", "start, end, label"]),
    (["I like London.", {"entities": [[7.0, 13, "GPE"]]}], ["integer"]),
    (["I like London.", {"entities": [["7", "13", "GPE"]]}], ["integer"]),
    (["I like London.", {"entities": [[7, 13, ""]]}], ["label"]),
    (["I like London.", {"entities": [[7, 13, 5]]}], ["label"]),
    ({"text": "I like London.", "spans": [{"start": 7, "label": "GPE"}]}, ["integer"]),
], ids=["text-only", "annotations-not-a-dict", "text-not-a-string", "not-a-record", "no-text",
        "text-not-a-string-in-dict", "spans-not-a-list", "entities-not-a-list", "span-of-two",
        "float-offset", "string-offsets", "empty-label", "label-not-a-string", "span-dict-without-end"])
def test_error_wrong_record_shape(write, read, record, words):
    path = write("train.jsonl", '["fine", {"entities": []}]\n' + json.dumps(record) + "\n")
    raises_at(read, path, 2, *words)


@pytest.mark.parametrize("span", [[7, 30], [-1, 6], [15, 16]])
def test_error_offsets_out_of_range(write_jsonl, read, span):
    path = write_jsonl("train.jsonl", [["I like London.", {"entities": [[*span, "GPE"]]}]])
    raises_at(read, path, 1, "out of range", f"[{span[0]}, {span[1]}]", "14 characters")


@pytest.mark.parametrize("span", [[13, 7], [7, 7]])
def test_error_offsets_reversed_or_empty(write_jsonl, read, span):
    path = write_jsonl("train.jsonl", [["I like London.", {"entities": [[*span, "GPE"]]}]])
    raises_at(read, path, 1, "reversed", f"[{span[0]}, {span[1]}]")


def test_error_misaligned_span_ends_inside_a_token(write_jsonl, read):
    path = write_jsonl("train.jsonl", [
        ["I like London.", {"entities": [[7, 13, "GPE"]]}],
        ["I like India.", {"entities": [[7, 11, "GPE"]]}],
    ])
    raises_at(read, path, 2, "[7, 11]", "'Indi'", "'India'", "[7, 12]", 'on_misaligned="expand"',
              "--on-misaligned expand")


def test_error_misaligned_span_starts_inside_a_token(write_jsonl, read):
    path = write_jsonl("train.jsonl", [["I like London.", {"entities": [[8, 13, "GPE"]]}]])
    raises_at(read, path, 1, "[8, 13]", "'ondon'", "'London'", "[7, 13]", "on_misaligned")


def test_error_whitespace_only_span(write_jsonl, read):
    path = write_jsonl("train.jsonl", [["I like  London.", {"entities": [[6, 7, "GPE"]]}]])
    raises_at(read, path, 1, "whitespace", "[6, 7]", 'on_misaligned="skip"', "--on-misaligned skip")


@pytest.mark.parametrize("tag,words", [
    ("X-ORG", ["unknown tag", "'X-ORG'", "'rejects'"]),
    ("ORG", ["unknown tag", "'ORG'"]),
    ("B-", ["unknown tag", "'B-'"]),
    ("b-ORG", ["unknown tag", "'b-ORG'"]),
    ("B-corporation,B-product", ["multi-label", "'B-corporation,B-product'"]),
])
def test_error_unknown_tag(write, read, tag, words):
    path = write("train.conll", f"EU\tB-ORG\nsays\tO\n\nEU\tB-ORG\nrejects\t{tag}\n")
    raises_at(read, path, 5, *words)


def test_error_i_after_o_when_forced_to_iob2(write, read):
    path = write("train.conll", "EU\tB-ORG\nrejects\tO\nGerman\tI-MISC\n")
    raises_at(read, path, 3, "I-MISC", "'German'", "follows O", 'scheme="iob1"', "--scheme iob1")


def test_error_i_after_o_in_a_file_read_as_iob2(write, read):
    # The first entity starts with B-, so the file is IOB2: a later I- after O is an error,
    # never silently dropped.
    path = write("train.conll", "EU\tB-ORG\nrejects\tO\n\nGerman\tI-MISC\ncall\tO\n")
    raises_at(read, path, 4, "I-MISC", "IOB2", "from line 1", "scheme=")


def test_error_biluo_entity_not_closed(write, read):
    path = write("train.biluo", "EU\tU-ORG\nNew\tB-LOC\nYork\tI-LOC\nrejects\tO\n")
    raises_at(read, path, 4, "LOC", "from line 2", "not closed", "L-")


def test_error_biluo_entity_not_closed_at_sentence_end(write, read):
    path = write("train.biluo", "EU\tU-ORG\nNew\tB-LOC\nYork\tI-LOC\n\nok\tO\n")
    raises_at(read, path, 3, "LOC", "not closed", "sentence end")


def test_error_biluo_last_without_begin(write, read):
    path = write("train.bioes", "EU\tS-ORG\nsays\tO\nYork\tE-LOC\n")
    raises_at(read, path, 3, "E-LOC", "'York'", "not begun")


def test_error_biluo_tags_in_a_file_forced_to_iob2(write, read):
    path = write("train.conll", "EU\tU-ORG\n")
    raises_at(read, path, 1, "U-ORG", "BILUO", 'scheme="biluo"', "--scheme biluo", scheme="iob2")


def test_error_conll_empty_token_inside_an_entity(write, read):
    path = write("train.conll", "New\tB-LOC\n\tI-LOC\nYork\tI-LOC\n")
    raises_at(read, path, 2, "empty token", "I-LOC")


def test_error_conll_line_without_a_tag(write, read):
    path = write("train.conll", "EU\tB-ORG\nrejects\n")
    raises_at(read, path, 2, "'rejects'", "tag")


def test_error_overlapping_spans(write_jsonl, read):
    path = write_jsonl("train.jsonl", [
        ["fine", {"entities": []}],
        ["I like New York City.", {"entities": [[7, 20, "GPE"], [11, 15, "CITY"]]}],
    ])
    raises_at(read, path, 2, "[7, 20]", "'New York City'", "[11, 15]", "'York'", "overlap",
              'on_overlap="longest"', "--on-overlap longest")


@pytest.mark.parametrize("name,content,words", [
    ("train.jsonl", "", ["empty"]),
    ("train.jsonl", "\n  \n\n", ["empty"]),
    ("train.json", "[]\n", ["empty"]),
    ("train.json", "[\n]\n", ["empty"]),
    ("train.conll", "", ["no tokens"]),
    ("train.conll", "\n\t\n\n", ["no tokens"]),
    ("train.conll", "-DOCSTART- -X- -X- O\n\n", ["no tokens"]),
    ("train.spacy", b"", ["DocBin"]),
])
def test_error_empty_file(write, read, name, content, words):
    path = write(name, content)
    with pytest.raises(NerDataError) as info:
        read(path)
    message = str(info.value)
    assert message.startswith(f"{path}:"), message
    for word in words:
        assert word in message


def test_error_empty_docbin(tmp_path, read):
    path = tmp_path / "train.spacy"
    DocBin().to_disk(path)
    with pytest.raises(NerDataError) as info:
        read(path)
    assert str(path) in str(info.value) and "no documents" in str(info.value)


def test_error_missing_path_fails_when_the_corpus_is_made(tmp_path):
    path = tmp_path / "nope" / "train.jsonl"
    with pytest.raises(NerDataError) as info:
        NerCorpus(path)
    assert str(path) in str(info.value) and "no such file" in str(info.value)


def test_error_directory_without_supported_files(write):
    folder = write("corpus/README.md", "nothing to read\n").parent
    with pytest.raises(NerDataError) as info:
        NerCorpus(folder)
    assert str(folder) in str(info.value) and "no supported files" in str(info.value)


@pytest.mark.parametrize("name,content", [
    ("train.jsonl", b'["ok", {"entities": []}]\n["fine", {"entities": []}]\n["caf\xe9", {"entities": []}]\n'),
    ("train.json", b'[\n["ok", {"entities": []}],\n["caf\xe9", {"entities": []}]\n]\n'),
    ("train.conll", b"ok\tO\n\nfine\tO\ncaf\xe9\tO\n"),
])
def test_error_non_utf8_bytes_name_their_line(write, read, name, content):
    path = write(name, content)
    bad_line = content[: content.index(b"\xe9")].count(b"\n") + 1
    raises_at(read, path, bad_line, "UTF-8", "0xe9")


def test_utf8_bom_is_accepted(write, read):
    path = write("train.jsonl", '\ufeff["I like London.", {"entities": [[7, 13, "GPE"]]}]\n')
    assert [ents(eg.reference) for eg in read(path)] == [[(7, 13, "GPE")]]


@pytest.mark.parametrize("content", [
    b"this is not a DocBin",
    zlib.compress(b"not msgpack either"),
], ids=["garbage", "zlib-garbage"])
def test_error_corrupt_docbin(write, read, content):
    path = write("train.spacy", content)
    with pytest.raises(NerDataError) as info:
        read(path)
    assert str(path) in str(info.value) and "DocBin" in str(info.value)


def test_error_truncated_docbin(tmp_path, read):
    path = tmp_path / "train.spacy"
    DocBin(docs=[_docbin_doc(spacy.blank("en").vocab)]).to_disk(path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(NerDataError) as info:
        read(path)
    assert str(path) in str(info.value) and "DocBin" in str(info.value)


def test_error_docbin_whose_docs_cannot_be_rebuilt(tmp_path, nlp):
    # The container is intact but its string table lacks the words: DocBin.from_disk
    # succeeds and the failure only comes while the docs are rebuilt. A fresh pipeline (not
    # `read`'s shared one), whose strings cannot stand in for the missing ones.
    vocab = spacy.blank("en").vocab
    msg = srsly.msgpack_loads(zlib.decompress(DocBin(docs=[_docbin_doc(vocab)]).to_bytes()))
    msg["strings"] = []
    path = tmp_path / "train.spacy"
    path.write_bytes(zlib.compress(srsly.msgpack_dumps(msg)))
    with pytest.raises(NerDataError) as info:
        list(NerCorpus(path)(nlp))
    assert str(path) in str(info.value)


def test_error_lone_surrogate_in_json_text(write, read):
    # Valid JSON, but "\ud800" is no character: the text cannot be encoded as UTF-8.
    path = write("train.jsonl", '["fine", {"entities": []}]\n["caf\\ud800 ok", {"entities": []}]\n')
    raises_at(read, path, 2)


def test_error_deeply_nested_json(write, read):
    path = write("train.json", "[" * 100_000 + "\n")
    with pytest.raises(NerDataError) as info:
        read(path)
    assert str(path) in str(info.value)


def test_json_integers_beyond_64_bits_are_valid_json(write_jsonl, read):
    path = write_jsonl("train.jsonl", [
        {"text": "I like London.", "spans": [{"start": 7, "end": 13, "label": "GPE"}],
         "meta": {"id": 2 ** 70}},
        {"text": "I like Paris.", "spans": [{"start": 7, "end": 12, "label": "GPE"}],
         "meta": {"id": 2 ** 70 + 1}},
    ])
    assert [ents(eg.reference) for eg in read(path)] == [[(7, 13, "GPE")], [(7, 12, "GPE")]]


# ---------------------------------------------------------------------------------------
# Lenient policies, and the one summary they log


def test_on_misaligned_expand(write_jsonl, read, summaries):
    path = write_jsonl("train.jsonl", [
        ["I like London.", {"entities": [[7, 13, "GPE"]]}],
        ["I like India.", {"entities": [[7, 11, "GPE"]]}],
    ])
    examples = read(path, on_misaligned="expand")
    assert [ents(eg.reference) for eg in examples] == [[(7, 13, "GPE")], [(7, 12, "GPE")]]
    (summary,) = summaries()
    assert "expand" in summary and ": 1 " in summary
    assert f"{path}:2" in summary and "'Indi'" in summary and "'India'" in summary


def test_on_misaligned_contract(write_jsonl, read, summaries):
    path = write_jsonl("train.jsonl", [["I like New Yorkers.", {"entities": [[7, 14, "GPE"]]}]])
    (eg,) = read(path, on_misaligned="contract")
    assert ents(eg.reference) == [(7, 10, "GPE")]
    (summary,) = summaries()
    assert "contract" in summary and ": 1 " in summary and f"{path}:1" in summary


def test_on_misaligned_contract_to_nothing_leaves_tokens_missing(write_jsonl, read, summaries):
    path = write_jsonl("train.jsonl", [["I like India.", {"entities": [[7, 11, "GPE"]]}]])
    (eg,) = read(path, on_misaligned="contract")
    assert ents(eg.reference) == []
    assert [t.ent_iob_ for t in eg.reference] == ["O", "O", "", "O"]
    (summary,) = summaries()
    assert ": 1 " in summary and f"{path}:1" in summary


def test_on_misaligned_skip_leaves_tokens_missing(write_jsonl, read, summaries):
    path = write_jsonl("train.jsonl", [
        ["Ann likes India.", {"entities": [[0, 3, "PER"], [10, 14, "GPE"]]}],
    ])
    (eg,) = read(path, on_misaligned="skip")
    assert ents(eg.reference) == [(0, 3, "PER")]
    assert [t.ent_iob_ for t in eg.reference] == ["B", "O", "", "O"]
    assert [t.text for t in eg.predicted] == ["Ann", "likes", "India", "."]
    (summary,) = summaries()
    assert "skipped" in summary and ": 1 " in summary and f"{path}:1" in summary


def test_on_overlap_longest(write_jsonl, read, summaries):
    path = write_jsonl("train.jsonl", [
        ["I like New York City and Rome.",
         {"entities": [[11, 15, "CITY"], [7, 20, "GPE"], [25, 29, "GPE"]]}],
    ])
    (eg,) = read(path, on_overlap="longest")
    assert ents(eg.reference) == [(7, 20, "GPE"), (25, 29, "GPE")]
    (summary,) = summaries()
    assert "longest" in summary and ": 1 " in summary and f"{path}:1" in summary


def test_on_overlap_skip_leaves_tokens_missing(write_jsonl, read, summaries):
    path = write_jsonl("train.jsonl", [
        ["I like New York City and Rome.",
         {"entities": [[11, 15, "CITY"], [7, 20, "GPE"], [25, 29, "GPE"]]}],
    ])
    (eg,) = read(path, on_overlap="skip")
    assert ents(eg.reference) == [(25, 29, "GPE")]
    assert [t.ent_iob_ for t in eg.reference] == ["O", "O", "", "", "", "O", "B", "O"]
    (summary,) = summaries()
    assert "skipped" in summary and ": 1 " in summary and f"{path}:1" in summary


def test_identical_duplicate_spans_are_not_an_overlap(write_jsonl, read):
    path = write_jsonl("train.jsonl", [["I like London.", {"entities": [[7, 13, "GPE"], [7, 13, "GPE"]]}]])
    (eg,) = read(path)
    assert ents(eg.reference) == [(7, 13, "GPE")]


def test_whitespace_inside_spans_is_trimmed_and_counted(write_jsonl, read, summaries):
    path = write_jsonl("train.jsonl", [
        ["I like London today.", {"entities": [[6, 13, "GPE"]]}],   # " London"
        ["I like Paris today.", {"entities": [[7, 13, "GPE"]]}],    # "Paris "
        ["I like Rome.", {"entities": [[7, 11, "GPE"]]}],
    ])
    examples = read(path)  # trimming applies under the default on_misaligned="error"
    assert [ents(eg.reference) for eg in examples] == [
        [(7, 13, "GPE")], [(7, 12, "GPE")], [(7, 11, "GPE")]]
    (summary,) = summaries()
    assert "trimmed" in summary and ": 2 " in summary
    assert f"{path}:1" in summary and f"{path}:2" in summary and f"{path}:3" not in summary


def test_summary_counts_all_and_names_the_first_few(write_jsonl, read, summaries):
    path = write_jsonl("train.jsonl", [["I like India.", {"entities": [[7, 11, "GPE"]]}]] * 7)
    assert len(read(path, on_misaligned="expand")) == 7
    (summary,) = summaries()
    assert ": 7 " in summary
    assert all(f"{path}:{n} " in summary for n in range(1, 6))
    assert f"{path}:6 " not in summary and "2 more" in summary


def test_summary_is_logged_once_not_every_epoch(write_jsonl, nlp, summaries):
    path = write_jsonl("train.jsonl", [["I like India.", {"entities": [[7, 11, "GPE"]]}]])
    corpus = NerCorpus(path, on_misaligned="expand")
    for epoch in range(3):
        assert len(list(corpus(nlp))) == 1
    assert len(summaries()) == 1


def test_no_summary_without_changes(write_jsonl, read, summaries):
    path = write_jsonl("train.jsonl", [["I like London.", {"entities": [[7, 13, "GPE"]]}]])
    read(path, on_misaligned="expand", on_overlap="longest")
    assert summaries() == []


def test_changes_of_several_kinds_make_one_summary(write_jsonl, read, summaries):
    path = write_jsonl("train.jsonl", [
        ["I like India.", {"entities": [[7, 11, "GPE"]]}],
        ["I like London today.", {"entities": [[6, 13, "GPE"]]}],
    ])
    read(path, on_misaligned="expand")
    (summary,) = summaries()
    assert f"{path}:1" in summary and f"{path}:2" in summary


# ---------------------------------------------------------------------------------------
# Streaming


LAST_RECORD_BAD = {
    "train.jsonl": '["I like London.", {"entities": [[7, 13, "GPE"]]}]\n["I like", {"entities": [[7, 99, "GPE"]]}]\n',
    "train.json": '[\n["I like London.", {"entities": [[7, 13, "GPE"]]}],\n["I like", {"entities": [[7, 99, "GPE"]]}]\n]\n',
    "train.conll": "I\tO\nlike\tO\nLondon\tB-GPE\n\nI\tO\nlike\tX-GPE\n",
}


@pytest.mark.parametrize("name", sorted(LAST_RECORD_BAD))
def test_corpus_streams_examples_before_a_bad_last_record(write, nlp, name):
    path = write(name, LAST_RECORD_BAD[name])
    examples = NerCorpus(path)(nlp)
    assert not isinstance(examples, list)
    first = next(examples)
    assert [t.text for t in first.predicted][:3] == ["I", "like", "London"]
    with pytest.raises(NerDataError) as info:
        list(examples)
    assert f"{path}:" in str(info.value)


@pytest.mark.parametrize("name", ["train.jsonl", "train.json", "train.conll"])
def test_reading_keeps_memory_flat(tmp_path, name):
    n = 8000
    record = ["I like London and Paris, said Ann.", {"entities": [[7, 13, "GPE"], [18, 23, "GPE"], [30, 33, "PER"]]}]
    path = tmp_path / name
    if name == "train.jsonl":
        path.write_text("".join(json.dumps(record) + "\n" for _ in range(n)))
    elif name == "train.json":
        path.write_text("[\n" + ",\n".join(json.dumps(record) for _ in range(n)) + "\n]\n")
    else:
        path.write_text("I\tO\nlike\tO\nLondon\tB-GPE\nand\tO\nNew\tB-GPE\nYork\tI-GPE\n.\tO\n\n" * n)
    size = path.stat().st_size
    assert size > 400_000
    tracemalloc.start()
    try:
        count = sum(1 for _ in NerCorpus(path).records())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n
    assert peak < size / 10, (peak, size)


# ---------------------------------------------------------------------------------------
# Properties


NLP = spacy.blank("en")
LABELS = ["PER", "ORG", "GPE", "creative-work", "Disease"]
WORDS = st.one_of(
    st.text(alphabet="abcdeXYZ", min_size=1, max_size=6),
    st.sampled_from([".", ",", "!", "?", "'s", "(", ")", "-", "n't", "U.S.", "e.g.", ":)", "#tag", "@ann"]),
    st.text(alphabet="abc.,-'!", min_size=1, max_size=5),
)


@st.composite
def texts_with_spans(draw):
    """A text of words joined by single spaces, and non-overlapping spans on spaCy's tokens."""
    text = " ".join(draw(st.lists(WORDS, min_size=1, max_size=15)))
    doc = NLP.make_doc(text)
    spans, i = [], 0
    while i < len(doc):
        if draw(st.booleans()):
            length = draw(st.integers(1, min(3, len(doc) - i)))
            first, last = doc[i], doc[i + length - 1]
            spans.append((first.idx, last.idx + len(last), draw(st.sampled_from(LABELS))))
            i += length
        else:
            i += draw(st.integers(1, 3))
    return text, spans


def _write_records(folder: str, name: str, text: str) -> Path:
    path = Path(folder) / name
    path.write_text(text, encoding="utf8")
    return path


@settings(max_examples=150, deadline=None)
@given(data=st.lists(texts_with_spans(), min_size=1, max_size=5),
       shape=st.sampled_from(["tuples", "spans", "entities-dicts"]))
def test_property_token_aligned_spans_round_trip(data, shape):
    def record(text, spans):
        if shape == "tuples":
            return [text, {"entities": [list(s) for s in spans]}]
        if shape == "spans":
            return {"text": text, "spans": [{"start": s, "end": e, "label": L} for s, e, L in spans]}
        return {"text": text, "entities": [{"start": s, "end": e, "label": L} for s, e, L in spans]}

    with tempfile.TemporaryDirectory() as folder:
        path = _write_records(folder, "train.jsonl",
                              "".join(json.dumps(record(t, s)) + "\n" for t, s in data))
        examples = list(NerCorpus(path)(NLP))
    assert [eg.reference.text for eg in examples] == [text for text, _ in data]
    assert [ents(eg.reference) for eg in examples] == [sorted(spans) for _, spans in data]
    for eg in examples:
        assert all(t.ent_iob_ in ("B", "I", "O") for t in eg.reference)


@st.composite
def tagged_sentences(draw):
    """Words with non-overlapping token spans: (words, [(start, end, label)])."""
    words = draw(st.lists(st.text(alphabet="abcXYZ.-'😀", min_size=1, max_size=5), min_size=1, max_size=12))
    spans, i = [], 0
    while i < len(words):
        if draw(st.booleans()):
            length = draw(st.integers(1, min(3, len(words) - i)))
            spans.append((i, i + length, draw(st.sampled_from(LABELS))))
            i += length
        else:
            i += 1
    return words, spans


def _encode(words, spans, scheme):
    tags = ["O"] * len(words)
    previous = None
    for start, end, label in spans:
        n = end - start
        if scheme == "biluo":
            if n == 1:
                tags[start] = f"U-{label}"
            else:
                tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (n - 2) + [f"L-{label}"]
        elif scheme == "iob1":
            adjacent = previous is not None and previous[1] == start and previous[2] == label
            tags[start:end] = [f"{'B' if adjacent else 'I'}-{label}"] + [f"I-{label}"] * (n - 1)
        else:
            tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (n - 1)
        previous = (start, end, label)
    return tags


@settings(max_examples=150, deadline=None)
@given(sentences=st.lists(tagged_sentences(), min_size=1, max_size=5),
       scheme=st.sampled_from(["iob1", "iob2", "biluo"]),
       separator=st.sampled_from(["\t", " ", "  "]),
       forced=st.booleans())
def test_property_conll_round_trip(sentences, scheme, separator, forced):
    text = "\n".join(
        "".join(f"{w}{separator}{t}\n" for w, t in zip(words, _encode(words, spans, scheme)))
        for words, spans in sentences
    )
    with tempfile.TemporaryDirectory() as folder:
        path = _write_records(folder, "train.conll", text)
        corpus = NerCorpus(path, scheme=scheme if forced else "auto")
        examples = list(corpus(NLP))
    assert [[t.text for t in eg.predicted] for eg in examples] == [words for words, _ in sentences]
    assert [token_ents(eg.reference) for eg in examples] == [spans for _, spans in sentences]


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 40), st.floats(allow_nan=False, width=32),
    st.text(st.characters(categories=["L", "N", "P", "Z", "S", "Cc", "Cs"]), max_size=12),
)
OFFSET = st.one_of(st.integers(-2, 30), st.integers(), st.floats(allow_nan=False), st.text(max_size=2), st.none())
SPAN = st.one_of(
    st.lists(st.one_of(OFFSET, st.sampled_from(LABELS)), min_size=0, max_size=4),
    st.fixed_dictionaries({"start": OFFSET, "end": OFFSET, "label": st.one_of(st.sampled_from(LABELS), JSON_SCALARS)}),
    JSON_SCALARS,
)
TEXT = st.text(st.characters(categories=["L", "N", "P", "Z", "S", "Cc", "Cs"]), max_size=30)
RECORD = st.one_of(
    st.tuples(TEXT, st.fixed_dictionaries({}, optional={"entities": st.one_of(st.lists(SPAN, max_size=4), JSON_SCALARS)})).map(list),
    st.fixed_dictionaries({"text": st.one_of(TEXT, JSON_SCALARS)}, optional={
        "spans": st.one_of(st.lists(SPAN, max_size=4), JSON_SCALARS),
        "entities": st.lists(SPAN, max_size=4),
        "answer": st.sampled_from(["accept", "reject", "ignore"]),
    }),
    st.recursive(JSON_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                 max_leaves=8),
)
CONLL_LINE = st.one_of(
    st.tuples(st.text(alphabet="ab. \t😀", max_size=4), st.sampled_from(["\t", " ", ""]),
              st.sampled_from(["O", "B-X", "I-X", "L-X", "U-X", "E-Y", "S-Y", "B-Y", "I-Y", "X-", "B-", "B-X,I-Y", "o", ""])
              ).map("".join),
    st.sampled_from(["", "\t", " ", "-DOCSTART- -X- O"]),
)
GARBAGE = st.one_of(
    st.tuples(st.just("jsonl"), st.lists(RECORD, max_size=5).map(lambda rs: "".join(json.dumps(r) + "\n" for r in rs))),
    st.tuples(st.just("json"), st.lists(RECORD, max_size=5).map(lambda rs: json.dumps(rs, indent=1))),
    st.tuples(st.just("conll"), st.lists(CONLL_LINE, max_size=12).map("\n".join)),
    st.tuples(st.sampled_from(["jsonl", "json", "conll", "tsv", "spacy", "txt"]), st.text(max_size=60)),
    st.tuples(st.sampled_from(["jsonl", "json", "conll", "spacy", "txt"]), st.binary(max_size=60)),
)


@settings(max_examples=300, deadline=None)
@given(garbage=GARBAGE,
       on_misaligned=st.sampled_from(["error", "expand", "contract", "skip"]),
       on_overlap=st.sampled_from(["error", "longest", "skip"]))
@example(garbage=("jsonl", '["caf\\ud800", {"entities": []}]\n'), on_misaligned="error", on_overlap="error")
def test_property_bad_input_raises_only_ner_data_error(garbage, on_misaligned, on_overlap):
    suffix, content = garbage
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"train.{suffix}"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf8", errors="surrogatepass")
        try:
            for eg in NerCorpus(path, on_misaligned=on_misaligned, on_overlap=on_overlap)(NLP):
                assert isinstance(eg, Example)
        except NerDataError as err:
            assert str(err).startswith(f"{path}:")
        try:
            ner_labels_v1(path)
        except NerDataError as err:
            assert str(err).startswith(f"{path}:")


# ---------------------------------------------------------------------------------------
# spacy.Corpus.v1's arguments and tokens


def test_a_spacy_init_config_resolves_with_only_the_reader_names_swapped(corpus_path):
    """A config from `spacy init config` (ner) with [corpora.train] and [corpora.dev] renamed to
    NerCorpus.v1 and the paths set resolves as `spacy train` resolves it: NerCorpus.v1 takes
    every argument spacy.Corpus.v1 takes (path, gold_preproc, max_length, limit, augmenter)."""
    from spacy.cli.init_config import init_config
    from spacy.util import load_model_from_config, resolve_dot_names

    config = init_config(lang="en", pipeline=["ner"], optimize="efficiency", gpu=False)
    assert set(config["corpora"]["train"]) == {"@readers", "path", "max_length", "gold_preproc", "limit", "augmenter"}
    for name in ("train", "dev"):
        assert config["corpora"][name]["@readers"] == "spacy.Corpus.v1"
        config["corpora"][name]["@readers"] = "spacy-ner-trainer.NerCorpus.v1"
    config["paths"]["train"] = str(corpus_path("wnut17/wnut17train.conll"))
    config["paths"]["dev"] = str(corpus_path("wnut17/emerging.dev.conll"))
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    train, dev = resolve_dot_names(nlp.config.interpolate(), ["corpora.train", "corpora.dev"])
    assert isinstance(train, NerCorpus) and isinstance(dev, NerCorpus)
    assert train.gold_preproc is False and train.max_length == 0 and train.limit == 0
    assert sum(1 for _ in dev(nlp)) == 1009


def _tokens(examples):
    return [([t.text for t in eg.predicted], [t.text for t in eg.reference], token_ents(eg.reference))
            for eg in examples]


@pytest.mark.parametrize("gold_preproc", [False, True])
def test_docbin_examples_match_spacy_corpus(tmp_path, gold_preproc):
    """Examples from a DocBin have the tokens spacy.Corpus.v1 gives them, with and without
    gold_preproc: known spaces are tokenized by the pipeline unless gold_preproc, unknown
    spaces keep the words, and gold_preproc splits documents into their sentences."""
    from spacy.training import Corpus

    nlp = spacy.blank("en")
    known = Doc(nlp.vocab, words=["Ann", "don't", "know", "Bob", ".", "Bye", "."],
                spaces=[True, True, True, False, True, False, False],
                sent_starts=[True, False, False, False, False, True, False],
                ents=["B-PER", "O", "O", "B-PER", "O", "O", "O"])
    unknown = Doc(nlp.vocab, words=["Sue", "doesn't", "."], ents=["B-PER", "O", "O"])
    assert unknown.has_unknown_spaces and not known.has_unknown_spaces
    path = tmp_path / "train.spacy"
    DocBin(docs=[known, unknown]).to_disk(path)
    ours = _tokens(NerCorpus(path, gold_preproc=gold_preproc)(nlp))
    assert ours == _tokens(Corpus(path, gold_preproc=gold_preproc)(nlp))
    first = ours[0][0]
    if gold_preproc:
        assert [p for p, _, _ in ours] == [["Ann", "don't", "know", "Bob", "."], ["Bye", "."], ["Sue", "doesn't", "."]]
    else:
        assert first == ["Ann", "do", "n't", "know", "Bob", ".", "Bye", "."]  # the pipeline's tokens
        assert ours[1][0] == ["Sue", "doesn't", "."]


def test_conll_examples_say_their_spaces_are_unknown(write, read):
    path = write("train.conll", "Shaka\tB-PER\nKhan\tI-PER\ndoesn't\tO\n")
    (eg,) = read(path)
    assert eg.reference.has_unknown_spaces
    assert eg.reference.text == eg.predicted.text == "Shaka Khan doesn't"
    assert [t.text for t in eg.predicted] == ["Shaka", "Khan", "doesn't"]


def test_same_tokens_rebuilds_a_gold_doc_over_the_same_tokens(nlp):
    from spacy_ner_trainer.readers import same_tokens

    doc = Doc(nlp.vocab, words=["New", "York", "is", "big", "."], ents=["B-GPE", "I-GPE", "O", "O", "O"])
    plain = same_tokens(nlp.vocab, doc)
    assert [t.text for t in plain] == [t.text for t in doc] and plain.text == doc.text
    assert plain.has_unknown_spaces and not plain.has_annotation("ENT_IOB")
    gold = same_tokens(nlp.vocab, doc, [(0, 2, "LOC")], missing=[(3, 4)])
    assert token_ents(gold) == [(0, 2, "LOC")]
    assert [t.ent_iob_ for t in gold] == ["B", "I", "O", "", "O"]


# ---------------------------------------------------------------------------------------
# What a directory holds that is not data


def test_directory_skips_saved_pipelines_and_hidden_entries(tmp_path, read, caplog):
    caplog.set_level(logging.INFO, logger="spacy.ner_trainer")
    data = tmp_path / "data"
    (data / "part").mkdir(parents=True)
    (data / "part" / "train.conll").write_text("Ann\tB-PER\n", encoding="utf8")
    (data / "b.jsonl").write_text('["Bob", {"entities": [[0, 3, "PER"]]}]\n', encoding="utf8")
    pipeline = data / "part" / "training" / "model-best"
    pipeline.parent.mkdir()
    spacy.blank("en").to_disk(pipeline)  # config.cfg, meta.json, tokenizer, vocab/*.json
    assert any(p.suffix == ".json" for p in pipeline.rglob("*") if p.name != "meta.json")
    (data / ".cache").mkdir()
    (data / ".cache" / "old.jsonl").write_text("not json\n", encoding="utf8")
    (data / ".draft.conll").write_text("broken line with no tag\n", encoding="utf8")
    examples = read(data)
    assert [eg.reference.text for eg in examples] == ["Bob", "Ann"]
    messages = [r.getMessage() for r in caplog.records if r.name == "spacy.ner_trainer"]
    skipped = [m for m in messages if "skipped" in m and "pipeline" in m]
    assert len(skipped) == 1 and str(pipeline) in skipped[0]  # said once, not per epoch
    hidden = [m for m in messages if "hidden" in m]
    assert len(hidden) == 1 and ".cache" in hidden[0] and ".draft.conll" in hidden[0]
    # A pipeline passed as the data fails with what it is.
    with pytest.raises(NerDataError, match="saved pipeline"):
        NerCorpus(pipeline)


# ---------------------------------------------------------------------------------------
# Labels that cannot be entity types


def test_odd_labels_are_warned_about_once_with_where_they_first_appear(write, read, summaries):
    path = write("train.conll", 'EU\tB-ORG\n\nthe\tO\n<unk>\tB-<unk>\n\nNY\tB-"LOC"\nand\tO\nit\tB-<unk>\n')
    examples = read(path)
    assert [token_ents(eg.reference) for eg in examples] == [
        [(0, 1, "ORG")], [(1, 2, "<unk>")], [(0, 1, '"LOC"'), (2, 3, "<unk>")]]  # kept, not refused
    warnings = [w for w in summaries() if "does not look like an entity type" in w]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(f"{path}:4: label '<unk>'")
    assert warnings[1].startswith(f"{path}:6: label '\"LOC\"'")


def test_odd_labels_in_span_records_and_control_characters(write_jsonl, read, summaries):
    path = write_jsonl("train.jsonl", [
        {"text": "Ann", "spans": [{"start": 0, "end": 3, "label": "PER"}]},
        {"text": "Bob", "spans": [{"start": 0, "end": 3, "label": "PER\u0007"}]},
        {"text": "Cy", "spans": [{"start": 0, "end": 2, "label": "PER\u0007"}]},
    ])
    assert len(read(path)) == 3
    (warning,) = [w for w in summaries() if "does not look like an entity type" in w]
    assert warning.startswith(f"{path}:2:") and "'\\x07'" in warning


def test_ordinary_labels_raise_no_warning(corpus_path, read, summaries):
    read(corpus_path("wnut17/emerging.dev.conll"))  # creative-work and the like are fine
    assert not [w for w in summaries() if "entity type" in w]

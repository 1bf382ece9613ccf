"""Benchmark train() on a GPU against the CPU on BC5CDR: words/s, the time the GPU takes to reach
the CPU run's best dev F, and the speed of a ner on a random-init transformer.

Runs (each a fresh process through bench/harness.py; cpu and gpu side by side, one core each):

  cpu   train() on the CPU with its defaults: compounding 4 -> 32 examples a batch, Adam at 0.001
  gpu   train(gpu_id=0) with gpu.py's settings: 2,000-word batches (spaCy's batch_by_words
        semantics), the learn rate warmed up from 0 to 0.002 over 100 updates, then held
  trf   a ner listening to a randomly initialised BERT-base-sized curated transformer (its
        WordPiece vocabulary built from the training words), trained one epoch on the GPU
        with ner's own copy of the transformer, then nlp.pipe over the dev sentences: speed only

Both cpu and gpu train on the whole training file (4,560 sentences) and score the first
--dev-limit dev sentences after every epoch, with patience 0 (no early stop). Columns:

  w/s       training words / seconds in train()'s loop (evaluation left out)
  best F    the best dev F and its epoch
  to target wall seconds from train()'s call (setup and evaluations included) to the end of the
            first epoch whose dev F reaches the cpu run's best F; x cpu: that over the cpu
            run's own wall seconds to its best epoch. The target: gpu <= 0.20x.

On the GPU machine (Python 3.12, packages carried as files; ../shared does not travel). Here,
from the project root, once:

    echo /.device/ >> .git/info/exclude
    ../shared/tools/device-site.sh .device/site.zip spacy==3.8.18 .
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 -d .device/whl \
        curated-tokenizers==0.0.10 curated-transformers==0.1.1 spacy-curated-transformers==0.3.1
    mkdir -p .device/data && cp -r ../shared/data/bc5cdr .device/data/

(device-site.sh's header says why: spaCy's wheels stripped into one zip; numpy, torch, CuPy
are the machine's own. The curated wheels go apart with --no-deps, else pip fetches torch's
CUDA wheels.) Then run, with carry [".device"] and timeout_s 600 (about 5 minutes):

    python3 -c "import zipfile; zipfile.ZipFile('.device/site.zip').extractall('/tmp/site')" &&
    python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .device/whl/*.whl &&
    export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 &&
    python3 bench/bench_gpu.py --data .device/data 2>&1 | tee $OUT/bench_gpu.log

To try more batch sizes in the same run, add e.g. --gpu-sizes 2000,4000 (each gpu run takes up
to --gpu-epochs epochs, one after another; keep the whole under the 10-minute command limit).

Here, on the CPU, a smoke run of every code path (300 sentences, 2 epochs, a tiny transformer,
the gpu settings on the CPU):

    python bench/bench_gpu.py --cpu-only --quick
"""
import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from harness import DATA, Results, check, revision, start_call

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's package, where not installed
from spacy_ner_trainer.gpu import GPU_BATCH_SIZE, GPU_LEARN_RATE  # noqa: E402
from spacy_ner_trainer.loop import DEFAULT_PATIENCE  # noqa: E402

CORPUS = ("bc5cdr/train.tsv", "bc5cdr/devel.tsv")
TARGET = 0.20  # gpu wall seconds to the cpu run's best F, over the cpu run's
BERT_BASE = {"hidden_width": 768, "intermediate_width": 3072, "num_attention_heads": 12, "num_hidden_layers": 12,
             "max_position_embeddings": 512}
BERT_TINY = {"hidden_width": 64, "intermediate_width": 128, "num_attention_heads": 2, "num_hidden_layers": 2,
             "max_position_embeddings": 128}


def read(path: str, limit: int) -> list:
    import spacy

    from spacy_ner_trainer import NerCorpus

    return list(NerCorpus(path, limit=limit)(spacy.blank("en")))


def train_run(train: str, dev: str, limit: int, dev_limit: int, n_iter: int, gpu_id: int, settings: str,
              seed: int, batch_words: int = 0, learn_rate: float = 0.0, patience: int = 0) -> Dict[str, Any]:
    """One train() run in this (fresh) process: per-epoch dev F, wall seconds since the call, words/s."""
    import spacy

    from spacy_ner_trainer import train as train_ner
    from spacy_ner_trainer.gpu import GPU_BATCH_UNIT, learn_rate_schedule

    train_examples, dev_examples = read(train, limit), read(dev, dev_limit)
    # The gpu settings, named in full (gpu.py's are train()'s defaults when gpu_id >= 0), so
    # that --cpu-only runs them on the CPU too.
    kwargs: Dict[str, Any] = {} if settings == "cpu" else {
        "batch_size": batch_words, "batch_unit": GPU_BATCH_UNIT, "learn_rate": learn_rate_schedule(learn_rate)}
    epochs: List[Dict[str, float]] = []
    start = time.perf_counter()

    def on_epoch(row: Dict[str, Any]) -> None:
        epochs.append({"epoch": row["epoch"], "f": row["dev"]["f"], "wall": time.perf_counter() - start,
                       "seconds": row["seconds"], "words": row["words"]})

    result = train_ner(spacy.blank("en"), train_examples, dev_data=dev_examples, n_iter=n_iter, seed=seed,
                       patience=patience, gpu_id=gpu_id, on_epoch=on_epoch, **kwargs)
    return {"epochs": epochs, "wps": result.words_per_second, "best_f": result.best_score,
            "best_epoch": result.best_epoch, "wall": time.perf_counter() - start}


def wordpiece_vocab(examples: list, size: int) -> List[str]:
    """[PAD] [UNK] [CLS] [SEP] [MASK], every character alone and as ##c, then the most frequent words."""
    counts = Counter(t.text for eg in examples for t in eg.reference)
    chars = sorted({c for word in counts for c in word})
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
    known = set(pieces)
    pieces += [w for w, _ in counts.most_common() if w not in known][: max(0, size - len(pieces))]
    return pieces


def transformer_config(vocab_path: Path, n_pieces: int, sizes: Dict[str, int]) -> str:
    window = min(128, sizes["max_position_embeddings"])
    return f"""
[nlp]
lang = "en"
pipeline = ["transformer","ner"]

[components]

[components.transformer]
factory = "curated_transformer"

[components.transformer.model]
@architectures = "spacy-curated-transformers.BertTransformer.v1"
vocab_size = {n_pieces}
{chr(10).join(f"{k} = {v}" for k, v in sizes.items())}
model_max_length = {sizes["max_position_embeddings"]}
piece_encoder = {{"@architectures":"spacy-curated-transformers.BertWordpieceEncoder.v1"}}
with_spans = {{"@architectures":"spacy-curated-transformers.WithStridedSpans.v1","stride":{window * 3 // 4},"window":{window}}}

[components.ner]
factory = "ner"

[components.ner.model]
@architectures = "spacy.TransitionBasedParser.v2"
state_type = "ner"
hidden_width = 64
maxout_pieces = 2
use_upper = false
nO = null

[components.ner.model.tok2vec]
@architectures = "spacy-curated-transformers.LastTransformerLayerListener.v1"
width = {sizes["hidden_width"]}
pooling = {{"@layers":"reduce_mean.v1"}}
upstream = "transformer"

[initialize]

[initialize.components]

[initialize.components.transformer]

[initialize.components.transformer.piecer_loader]
@model_loaders = "spacy-curated-transformers.WordpieceLoader.v1"
path = {json.dumps(str(vocab_path))}
"""


def transformer_run(train: str, dev: str, limit: int, dev_limit: int, gpu_id: int, size: str, seed: int) -> Dict[str, Any]:
    """A random-init transformer + ner: one epoch of train() (ner trains its own copy of the
    initialized transformer), then nlp.pipe over the dev sentences."""
    from spacy.util import fix_random_seed, load_model_from_config
    from thinc.api import Config, set_gpu_allocator

    from spacy_ner_trainer import train as train_ner
    from spacy_ner_trainer.gpu import GPU_BATCH_SIZE, TRANSFORMER_LEARN_RATE, TRANSFORMER_WARMUP_STEPS, \
        learn_rate_schedule, use_gpu

    train_examples, dev_examples = read(train, limit), read(dev, dev_limit)
    sizes = BERT_BASE if size == "base" else BERT_TINY
    with tempfile.TemporaryDirectory() as tmp:
        pieces = wordpiece_vocab(train_examples, 30000 if size == "base" else 500)
        vocab_path = Path(tmp) / "vocab.txt"
        vocab_path.write_text("\n".join(pieces) + "\n", encoding="utf8")
        if gpu_id >= 0:
            set_gpu_allocator("pytorch")  # one memory pool for CuPy and PyTorch
        fix_random_seed(seed)
        nlp = load_model_from_config(Config().from_str(transformer_config(vocab_path, len(pieces), sizes)),
                                     auto_fill=True, validate=True)
        if gpu_id >= 0:
            use_gpu(nlp, gpu_id)
        start = time.perf_counter()
        nlp.initialize(lambda: train_examples[:100])
        init_seconds = time.perf_counter() - start
        result = train_ner(nlp, train_examples, n_iter=1, seed=seed, gpu_id=gpu_id, batch_size=GPU_BATCH_SIZE,
                           batch_unit="words", learn_rate=learn_rate_schedule(TRANSFORMER_LEARN_RATE,
                                                                              TRANSFORMER_WARMUP_STEPS))
        texts = [eg.reference.text for eg in dev_examples]
        words = sum(len(eg.reference) for eg in dev_examples)
        start = time.perf_counter()
        for _ in nlp.pipe(texts, batch_size=128):
            pass
        predict_seconds = time.perf_counter() - start
    return {"train_wps": result.words_per_second, "predict_wps": words / predict_seconds,
            "init_seconds": init_seconds, "pieces": len(pieces), "params": sum(
                p.numel() for p in nlp.get_pipe("transformer").model.get_ref("transformer").shims[0]._model.parameters())}


def time_to(epochs: List[Dict[str, float]], target: float) -> Optional[Dict[str, float]]:
    """The first epoch whose dev F reaches `target`."""
    return next((row for row in epochs if row["f"] >= target - 1e-9), None)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding bc5cdr/")
    parser.add_argument("--gpu-id", type=int, default=0)
    parser.add_argument("--cpu-only", action="store_true", help="no GPU: the gpu settings run on the CPU")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 sentences, 2 epochs, a tiny transformer")
    parser.add_argument("--cpu-epochs", type=int, default=12)
    parser.add_argument("--gpu-epochs", type=int, default=30, help="at most: a gpu run stops after "
                        f"{DEFAULT_PATIENCE} epochs without a dev improvement (train()'s default patience)")
    parser.add_argument("--gpu-sizes", default=str(GPU_BATCH_SIZE),
                        help="batch sizes in words to try on the GPU, comma-separated; one run each, in turn")
    parser.add_argument("--gpu-learn-rate", type=float, default=GPU_LEARN_RATE, help="reached after the warm-up")
    parser.add_argument("--limit", type=int, default=0, help="training sentences (0: all)")
    parser.add_argument("--dev-limit", type=int, default=1500, help="dev sentences scored every epoch")
    parser.add_argument("--repeats", type=int, default=1, help="seeds 0..repeats-1")
    parser.add_argument("--transformer", choices=["base", "tiny", "none"], default="base")
    args = parser.parse_args(argv)
    if args.quick:
        args.limit, args.dev_limit = args.limit or 300, min(args.dev_limit, 200)
        args.cpu_epochs, args.gpu_epochs = 2, 2
        args.transformer = "tiny" if args.transformer != "none" else "none"
    gpu_id = -1 if args.cpu_only else args.gpu_id
    train, dev = (str(args.data / path) for path in CORPUS)
    for path in (train, dev):
        if not Path(path).is_file():
            print(f"{path}: missing; give --data, the folder holding bc5cdr/")
            return 2
    device = "cpu" if gpu_id < 0 else f"gpu:{gpu_id}"
    sizes = [int(size) for size in args.gpu_sizes.split(",")]
    print(f"bench_gpu: {revision()}; bc5cdr, limit {args.limit or 'none'}, dev {args.dev_limit} sentences, "
          f"cpu {args.cpu_epochs} / gpu {args.gpu_epochs} epochs at most, {args.repeats} repeats, gpu settings on "
          f"{device}", flush=True)
    cpu_row = "cpu, cpu defaults"
    gpu_rows = {size: f"{device}, {size} words, lr {args.gpu_learn_rate:g}" for size in sizes}
    res = Results(baseline=cpu_row, ratio_label="x cpu", row_label="run")
    base = {"train": train, "dev": dev, "limit": args.limit, "dev_limit": args.dev_limit}
    reached_all = True
    for seed in range(args.repeats):
        # The cpu run on core 0 while the gpu runs follow one another on core 1.
        cpu = start_call("bench_gpu.py:train_run", {**base, "n_iter": args.cpu_epochs, "gpu_id": -1,
                                                    "settings": "cpu", "seed": seed}, core=0)
        gpu_runs = {size: start_call("bench_gpu.py:train_run", {
            **base, "n_iter": args.gpu_epochs, "gpu_id": gpu_id, "settings": "gpu", "seed": seed, "batch_words": size,
            "learn_rate": args.gpu_learn_rate, "patience": DEFAULT_PATIENCE}, core=1).wait().result for size in sizes}
        c = cpu.wait().result
        best = next(row for row in c["epochs"] if row["epoch"] == c["best_epoch"])
        res.add(cpu_row, pair=seed, **{"w/s": c["wps"], "best F": 100 * c["best_f"], "best epoch": c["best_epoch"],
                                       "to target s": best["wall"], "run wall s": c["wall"]})
        print(f"  seed {seed}: cpu best dev F {100 * c['best_f']:.2f} at epoch {c['best_epoch']} ({best['wall']:.0f}s); "
              "by epoch: " + "/".join(f"{100 * row['f']:.1f}" for row in c["epochs"]), flush=True)
        for size, g in gpu_runs.items():
            reached = time_to(g["epochs"], c["best_f"])
            reached_all &= reached is not None
            res.add(gpu_rows[size], pair=seed, **{
                "w/s": g["wps"], "best F": 100 * g["best_f"], "best epoch": g["best_epoch"],
                "to target s": reached["wall"] if reached else None, "run wall s": g["wall"]})
            outcome = (f"reached it at epoch {reached['epoch']} ({reached['wall']:.0f}s)" if reached
                       else f"did not reach it in {len(g['epochs'])} epochs")
            print(f"    {gpu_rows[size]}: {outcome}; by epoch: "
                  + "/".join(f"{100 * row['f']:.1f}" for row in g["epochs"]), flush=True)
    print()
    res.print({"w/s": ",.0f", "best F": ".2f", "best epoch": ".0f", "to target s": ".1f", "run wall s": ".0f"},
              ratios=["w/s", "to target s"])
    print("\nTargets")
    ok = True
    for size in sizes:
        ratio = res.ratio(gpu_rows[size], "to target s")
        ok &= check(ratio is not None and ratio <= TARGET and reached_all,
                    f"{gpu_rows[size]}: reaches the cpu run's best dev F in "
                    f"{'-' if ratio is None else f'{ratio:.2f}'}x its wall time (target <= {TARGET:.2f}x)")
    if args.transformer != "none":
        t = start_call("bench_gpu.py:transformer_run", {**base, "gpu_id": gpu_id, "size": args.transformer,
                                                        "seed": 0}, core=0).wait().result
        print(f"\nTransformer ner ({args.transformer}: {t['params'] / 1e6:.1f}M parameters, {t['pieces']:,} pieces, "
              f"random weights, {device}): train {t['train_wps']:,.0f} words/s (one epoch), "
              f"nlp.pipe {t['predict_wps']:,.0f} words/s; initialize {t['init_seconds']:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The command line: `python -m spacy_ner_trainer train | demo | verify | evaluate | debug | ...`."""
from . import check, curve, data, init_config, train  # noqa: F401  (each registers its commands)
from ._util import app


def main() -> None:
    app(prog_name="python -m spacy_ner_trainer")


__all__ = ["app", "main"]

"""`python -m spacy ner-trainer ...`: this package's commands under spaCy's CLI (group spacy_cli)."""
import warnings
from typing import Any, Optional


def _register() -> Optional[Any]:
    # spaCy imports this module for every `python -m spacy` call: whatever goes wrong here must
    # not take spaCy's own commands down with it.
    try:
        from spacy.cli._util import app as spacy_app

        from .cli import app

        spacy_app.add_typer(app, name="ner-trainer")
        return app
    except Exception as err:  # noqa: BLE001
        warnings.warn(f"spacy-ner-trainer: could not add its commands to spaCy's CLI: {err!r}")
        return None


ner_trainer = _register()

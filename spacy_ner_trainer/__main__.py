"""`python -m spacy_ner_trainer`."""
from .cli import main

if __name__ == "__main__":
    main()

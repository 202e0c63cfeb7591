"""``python -m emformer_edu.train``: train a small streaming Emformer RNN-T (see ``--help``)."""
from .cli import main

if __name__ == "__main__":
    main()

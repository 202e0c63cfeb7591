"""``python -m emformer_edu.train``: train a small streaming Emformer RNN-T (see ``--help``)."""
from .trainer import main

if __name__ == "__main__":
    main()

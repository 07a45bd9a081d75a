"""`python -m newsletter …` runs the same command line as the `newsletter` script."""

from .cli import main

if __name__ == "__main__":  # pragma: no cover
    main()

"""``python -m emollm`` is the same as the ``emollm`` console script."""

from emollm.cli import main

if __name__ == "__main__":
    main()

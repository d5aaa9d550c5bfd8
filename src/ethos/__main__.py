"""`python -m ethos` is the same as the `ethos` command."""

from ethos.cli import main

main()

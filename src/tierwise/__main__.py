"""`python -m tierwise` is the `tierwise` command."""

from tierwise.cli import main

main()

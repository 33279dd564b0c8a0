"""`python -m snnprune` runs the CLI."""

from snnprune.cli import main

main()

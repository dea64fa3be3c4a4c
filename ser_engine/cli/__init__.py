"""The ``ser`` command line: the parser and one module per group of sub-commands."""

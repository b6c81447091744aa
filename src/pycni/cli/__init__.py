"""The `pycni` command line: cnitool-compatible verbs and more.

`pycni.cli.main` holds the dispatch table; each subcommand lives in a module
of this package, imported only when that subcommand runs.
"""

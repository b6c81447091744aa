"""`python -m pycni` runs the `pycni` command."""

from pycni.cli.main import main

raise SystemExit(main())

"""`python -m respan_instrument.cli`: the same as the `respan-instrument` command."""

from . import main

raise SystemExit(main())

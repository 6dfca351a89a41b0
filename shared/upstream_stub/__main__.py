"""`python -m upstream_stub`."""

from upstream_stub._cli import main

raise SystemExit(main())

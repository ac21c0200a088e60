"""``python -m shoal``: the admin tool, as the ``shoal`` console script."""

from __future__ import annotations

from shoal.cli.main import main

raise SystemExit(main())

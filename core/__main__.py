"""``python -m core`` is the same as the ``ert`` command."""

from core.cli import main

raise SystemExit(main())

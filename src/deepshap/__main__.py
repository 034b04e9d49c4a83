"""``python -m deepshap``: the same as the ``deepshap`` console script."""

from deepshap.cli import main

raise SystemExit(main())

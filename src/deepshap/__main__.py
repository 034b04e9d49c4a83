"""``python -m deepshap``: the same as the ``deepshap`` console script."""

from deepshap.cli import main

if __name__ == "__main__":  # importing this module (doc tools, spawned processes) must not run the CLI
    raise SystemExit(main())

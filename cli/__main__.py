"""Entry point of `python -m cli`."""

from cli import main

raise SystemExit(main())

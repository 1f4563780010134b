"""``python -m assistd.fakellm --script FILE [--host H] [--port P]``."""

from assistd.fakellm.cli import main

raise SystemExit(main(prog="python -m assistd.fakellm"))

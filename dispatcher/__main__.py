"""`python -m dispatcher` is the `webhooks` command."""

import sys

from dispatcher.cli import main

sys.exit(main())

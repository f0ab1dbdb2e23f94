"""`python -m dispatcher` is the `webhooks` command."""

import sys

from dispatcher.ops.cli import main

sys.exit(main())

"""``python -m digits_nn.stack``: see :mod:`digits_nn.stack`."""

import sys

from digits_nn.stack.control import main

sys.exit(main())

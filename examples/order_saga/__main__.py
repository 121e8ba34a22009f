"""``python -m examples.order_saga``: run the order saga demo."""

import sys

from .service import main

sys.exit(main())

"""``python -m tinyalex.distributed``: the bytes a training step sends, data vs towers."""

import sys

from tinyalex.distributed.volume import main

sys.exit(main())

import sys

from enchant_worker.cli import main

sys.exit(main())

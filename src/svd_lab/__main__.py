import sys

from svd_lab.cli import main

sys.exit(main())

import sys

from sb2bench.cli import main

sys.exit(main())

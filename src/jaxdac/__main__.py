import sys

from jaxdac.cli import main

sys.exit(main())

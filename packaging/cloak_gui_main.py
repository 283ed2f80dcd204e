"""Entry point of the bundled app: the same ``main`` as the ``cloak-gui`` command."""

import sys

from cloak.gui.app import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m taltasks`` runs the ``taltasks`` command (handy where the script is not on PATH)."""

from taltasks.cli import main

main()

"""Workflows: plan as data first, then carry the plan out.

Planning (:mod:`plan`, :mod:`quorum`) is pure. Carrying out keeps a :mod:`journal` of
every step and temporary change, and a :mod:`cleanup` stack that undoes those changes
in ``finally`` — also on Ctrl-C and SIGTERM.
"""

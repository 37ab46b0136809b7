"""Talos's official JSON schemas (1.8–1.14) and deprecation markers, shipped as package data.

Written by ``tools/talos_schema_data.py`` from the Talos repository; see ``SOURCES.md``.
Read through :mod:`taltasks.machineconfig.validate.typemodel`.
"""

"""Validation rules, one module per area; every module here is loaded by the registry.

Add a module (or a function to one) decorated with
:func:`taltasks.machineconfig.validate.registry.rule` and it runs for the contracts it names.
"""

from simtalos import admin, world  # noqa: F401 - fixtures for this folder

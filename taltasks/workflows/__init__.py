"""Workflows: each computes a plan as plain data, then an executor carries it out against real
clients, reporting through events."""

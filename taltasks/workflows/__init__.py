"""Workflows: plan (pure data), then execute against real clients, reporting through events."""

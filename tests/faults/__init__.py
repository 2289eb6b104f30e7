"""Fault tests: servers stopped and processes killed under the running services."""

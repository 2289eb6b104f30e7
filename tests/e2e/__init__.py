"""End-to-end tests through the running services and real peers."""

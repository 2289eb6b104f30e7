"""The retrainer command line and the local stack it drives."""

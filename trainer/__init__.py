"""The trainer service: retrain requests in, trained, evaluated and versioned models out."""

"""STSS runtime: conventions, frame dumps, and (in later issues) models, passes, back-ends."""

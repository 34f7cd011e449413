"""Coverage-guided fuzz harnesses (atheris) for Pasture's parsers of untrusted input."""

"""The only place where stages are composed."""

"""Running copies: model data, the process runtime, and the live table of serving copies."""

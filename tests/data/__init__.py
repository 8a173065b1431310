"""Data the tests replay: transcribed public examples."""

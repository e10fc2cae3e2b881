"""Helpers and fixtures shared by test modules (imported, never collected as tests)."""

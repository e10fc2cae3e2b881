"""Tests of service/directory/."""

"""Tests of service/training/."""

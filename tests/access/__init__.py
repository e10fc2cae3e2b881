"""Tests of service/access/."""

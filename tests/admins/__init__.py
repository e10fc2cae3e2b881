"""Tests of service/admins/."""

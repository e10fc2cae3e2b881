"""Tests of service/clients/."""

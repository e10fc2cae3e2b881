"""Tests of deploy/: the container, compose, Kubernetes and systemd files, checked without a Docker engine."""

"""Hollow nodes: many kubelets with the in-memory runtime in one process, for scale tests (kubemark/kwok)."""

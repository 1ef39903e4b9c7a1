"""Operator tasks against the cluster: topic provisioning."""

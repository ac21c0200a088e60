"""Cluster DNS: a DNS server per node answering Service and Pod names from informers (as CoreDNS's
kubernetes plugin), forwarding other names to the node's resolvers."""

"""The proxy agent: makes every Service reachable on its node, like kube-proxy."""

"""The cloud controller manager: node, service (load balancer), route and volume controllers that
hold the cluster to the same contract against a pluggable infrastructure provider."""

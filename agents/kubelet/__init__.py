"""The kubelet agent: runs the Pods bound to one node through a container runtime."""

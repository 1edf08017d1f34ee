"""The traffic port: Kubernetes Services and Istio routing objects."""

"""The workload port: the target Deployment and its primary copy."""

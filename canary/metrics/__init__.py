"""The evidence port: queries for analysis metrics, and Prometheus to answer them."""

"""Gateway API routing: HTTPRoute and GRPCRoute manifests (routes.py, built from rules.py,
matches.py and policy.py), a user's own route edited in place (adopted.py), and whether a
Gateway accepted a route (status.py). Pure: builds and reads objects, never calls the API.
"""

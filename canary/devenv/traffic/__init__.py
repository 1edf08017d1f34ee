"""The traffic simulator: Istio-like routing and Istio-standard metrics, without a mesh."""

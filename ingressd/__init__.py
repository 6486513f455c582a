"""ingressd: a small asyncio reverse proxy that serves Kubernetes Ingress objects from YAML."""

__version__ = "0.1.0"

"""Simulated Talos nodes: apid routing, machined behaviour, COSI resources, over mutual TLS.

Each node listens on its own loopback address, port 50000, behind a :class:`TlsFront`
(OpenSSL terminates Ed25519 mutual TLS) that forwards to one in-process grpcio server.
Handlers find the caller's roles and the endpoint node from the forwarded connection.
Behaviour follows talos-api.md §8–§12: roles per RPC, one-to-one and one-to-many routing,
maintenance mode, apply modes, the upgrade event sequence, reboots that drop connections.
"""

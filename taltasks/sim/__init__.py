"""The simulated cluster: Talos nodes speaking the real gRPC API over mutual TLS, a strict
Kubernetes API emulator over HTTPS, and Rook-Ceph / CNPG / Flux operators reacting to node
reboots — all on 127.0.0.0/8, in one process, so every workflow can be rehearsed and tested
without hardware. Nothing here ever connects outside the loopback network.
"""

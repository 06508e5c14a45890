"""Bundles, torch-free: the format (bundle.json), file hashes, archives and the OpenVINO runtime policy.

Used by evaluation, the league and the car, so nothing here (nor anything it imports) may import
torch, stable-baselines3 or pybullet; tests/test_layers.py checks that on the import graph.
Training, networks and export (torch) live on the other side, in racer.train / racer.export.
"""

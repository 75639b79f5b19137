"""Pure PyTorch + FAISS model code: encoders, features, side MoE, recommender.

Knows nothing of HTTP or Redis; service/ and workers/ build on it.
"""

"""Stable Diffusion generation: models, device policy, resident pipelines, LoRA adapters, prompts,
image metadata. Knows nothing of the queue, the worker or the database (checked by import-linter).
"""

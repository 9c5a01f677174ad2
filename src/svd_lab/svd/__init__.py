"""Stable Video Diffusion: versions, network configs, loading, conditioning and the image-to-video pipeline."""

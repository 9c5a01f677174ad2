"""Converters from other checkpoint layouts into the diffusers/transformers modules svd-lab runs.

- :mod:`svd_lab.convert.sgm`: Stability AI's single-file ``generative-models`` (sgm) checkpoints
  (``svd.safetensors``, ``svd_xt.safetensors``, ``svd_image_decoder.safetensors``, ...).
- :mod:`svd_lab.convert.sgm_preprocess`: sgm's CLIP preprocessing (kornia-style antialiased bicubic resize).
"""

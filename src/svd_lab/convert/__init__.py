"""Converters from other checkpoint layouts into the diffusers/transformers modules svd-lab runs.

Stability AI's single-file ``generative-models`` (sgm) checkpoints (``svd.safetensors``, ``svd_xt.safetensors``,
``svd_image_decoder.safetensors``, ...), in dependency order:

- :mod:`svd_lab.convert.sgm_keys`: sgm key -> diffusers key (pure functions on names; no torch);
- :mod:`svd_lab.convert.sgm_config`: the networks' configs from the tensor shapes, head sizes (no torch);
- :mod:`svd_lab.convert.sgm_plan`: the whole conversion decided from the header, the version (no torch);
- :mod:`svd_lab.convert.sgm_load`: the file read tensor by tensor into the modules;
- :mod:`svd_lab.convert.sgm_write`: the converted diffusers folder and its record;
- :mod:`svd_lab.convert.sgm`: the public names of all of the above (import from here);
- :mod:`svd_lab.convert.sgm_preprocess`: sgm's CLIP preprocessing (kornia-style antialiased bicubic resize).
"""

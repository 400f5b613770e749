"""The masked-diffusion policy: tokens, DiT backbone, diffusion, training and evaluation."""

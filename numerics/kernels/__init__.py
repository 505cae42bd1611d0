"""Tangent kernels: empirical (autodiff and structured, `empirical`) and derived (`theory`)."""

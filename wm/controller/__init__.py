"""C: the linear controller evolved with CMA-ES."""

# The one list of controller variants: the full model sees [z, h]; the paper's ablation sees z only.
# (Here, not in model.py, so that the command line can name them without importing torch.)
VARIANTS = ("z_h", "z")

"""C: the linear controller evolved with CMA-ES."""

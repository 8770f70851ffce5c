"""C: the linear controller evolved with CMA-ES."""

# The one list of controller variants: the full model sees [z, h]; the paper's CarRacing ablation sees z
# only; its Doom controller sees [z, c, h] (the LSTM's cell state too, as the original code's Doom C).
# (Here, not in model.py, so that the command line can name them without importing torch.)
# The order is part of every CMA-ES seed (wm/stages/train_controller.py): add new variants at the end.
VARIANTS = ("z_h", "z", "z_c_h")

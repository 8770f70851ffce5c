"""The commands that combine models, one layer above them: collection (by a random policy or a trained
agent), CMA-ES training of C and its diagnostics, `wm dream`, evaluation and export. They import the model
packages (vae/, mdn/, controller/), the episode runners (episodes/) and the data layer (rollouts/); nothing
below imports them."""

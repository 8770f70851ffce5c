"""V: the convolutional VAE that compresses a 64x64x3 frame into z (32 numbers)."""

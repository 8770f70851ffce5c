"""The data: Zarr stores of episodes (rollouts and latents), checked as they are written and read, and the
readers that stream them to V and M. Collection itself is a stage (wm/stages/collect.py)."""

"""Rollouts: random policies, collection into Zarr shards, and the readers that stream them to V and M."""

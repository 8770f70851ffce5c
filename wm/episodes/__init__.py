"""Agent episodes in the real environment, shared by CMA-ES (wm train-controller) and `wm evaluate`:
the agent (V + M + C on a batch), the batched lockstep runner, and the farm that spreads chunks of
episodes over MPI ranks. (The random-policy episodes that make V's and M's data are wm.rollouts.)"""

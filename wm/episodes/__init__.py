"""Agent episodes, shared by CMA-ES (wm train-controller) and `wm evaluate`: the agent (V + M + C on a
batch), the batched lockstep runner, its dream twin (dream.py), and the farm that spreads chunks of
episodes over MPI ranks. The stages that run them live in wm/stages/."""

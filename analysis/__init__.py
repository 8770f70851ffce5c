"""Analysis scripts: figures the docs quote, read from committed runs and evaluations (each script says which command printed which figure). Speed benchmarks live in benchmarks/."""

"""Models: the baselines, biased and implicit ALS, kNN, EASE, RP3beta, the blends, and tuning."""

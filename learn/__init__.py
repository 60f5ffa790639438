"""Learning which offer works for whom: arm posteriors, Thompson-sampling allocation among the
candidates the guard allows (with logged propensities), and off-policy evaluation over the logs."""

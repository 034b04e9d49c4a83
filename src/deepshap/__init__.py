"""deepshap: Shapley-value explanations for deep-learning models."""

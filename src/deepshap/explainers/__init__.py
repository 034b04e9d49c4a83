"""The explainers: expected gradients, DeepSHAP and Partition (Owen) values."""

"""The mathematics: the float64 reference, argument validation, the error model, the laws
properties compare, gradients and moving statistics, and the Hypothesis strategies."""

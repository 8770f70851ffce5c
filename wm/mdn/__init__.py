"""M: the MDN-RNN that predicts the next z from z and the action."""

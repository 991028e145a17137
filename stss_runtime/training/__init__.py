"""Training: samples from frame dumps (through the runtime's own history), the loss, the loop."""

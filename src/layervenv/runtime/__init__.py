"""The environment a layer runs in: the change model, the shells that render it, launchers."""

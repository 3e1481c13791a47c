"""What a layer sees, and every problem ``check`` finds in it."""

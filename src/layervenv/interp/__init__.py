"""Code run inside the stack's interpreter, and the tool's view of that interpreter."""

"""``python -m layervenv``: as the console script, isolated from the stack's PYTHONPATH."""

from layervenv.app.isolation import console

if __name__ == "__main__":
    console()

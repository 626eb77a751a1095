"""``python -m demo``: build the demo network and serve it."""

from demo.cli import demo

if __name__ == "__main__":
    demo()

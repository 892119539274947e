"""The assistant's stages and the one module (session.py) that wires them."""

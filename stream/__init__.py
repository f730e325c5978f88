"""p2c package."""

"""ethos."""

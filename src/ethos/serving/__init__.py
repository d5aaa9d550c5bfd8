"""Serving a finished run: the model side (load, batch, quantise, explain) and the HTTP app."""

"""One module per dashboard; each has ``NAME`` (file name) and ``build()``."""

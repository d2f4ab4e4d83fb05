"""Models of every origin (toy hub, Hugging Face, local folders).

Modules: zoo (one resolver for every model spec the suite uses, and loaders that work whatever the
origin).
"""

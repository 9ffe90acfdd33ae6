"""The JAX backend's implementations (see ``ats.backends``)."""

"""The PyTorch backend's implementations (see ``ats.backends``)."""

"""The TensorFlow backend's implementations (see ``ats.backends``)."""

"""convergent: state machines that stay correct when distributed."""
__version__ = "0.1.0"

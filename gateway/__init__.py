"""intake-gateway: complaints from every channel, normalised, triaged and fed to the back office."""

__version__ = "0.1.0"

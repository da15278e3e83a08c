"""rentalctl: build, ship and operate the rental-marketplace batch analytics pipeline."""

__version__ = "0.1.0"

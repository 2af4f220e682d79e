"""Studies run from a source checkout, not shipped with the package: `python -m research.<area>.<study>`
from the repository root. They may import the library; the library never imports them."""

"""Rollover's core: framework-free, below handlers/ and cards/, unaware of fakes/.

Importing it must stay cheap: sub-commands load only the modules they need.
"""

VERSION = "0.1.0"

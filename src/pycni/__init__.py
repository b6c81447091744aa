"""pycni: the Container Network Interface in pure Python.

Import nothing here: every plugin process imports this package first, and
start-up time is the main cost of an exec'd plugin.
"""

__version__ = "0.1.0"

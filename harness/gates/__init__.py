"""The shipped gates: one test per roadmap criterion, each declared once in `registry`.

The plugin collects this package when `--board` is given and no test path is (see the README), so
`pip install` into an overlay repository and `pytest --board nanopi-m6` runs them there.
"""

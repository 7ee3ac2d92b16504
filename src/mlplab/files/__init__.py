"""User files, handled safely: bounded reads (:mod:`.limits`) and writes that never destroy
(:mod:`.atomic`). The lowest layer: it imports only :mod:`mlplab.errors`, and every other
package reads and writes through it.
"""

"""graphcomms' QA harnesses: ``python -m qa soak`` and ``python -m qa flood``.

They live beside the package, not in it: they check graphcomms from outside, as the
benchmarks do, and are run from a checkout of the repository (with the ``test``
extra installed), never shipped in the wheel. CI runs both at a small size through
``tests/reliability``.

=========  ====================================================================
``soak``   thousands of operations over many concurrent calls, through the Graph
           emulator and the real webhook under a seeded fault mix, each outcome
           checked against the emulator's own record
``flood``  the webhook under a flood of valid, forged and malformed requests from
           another process, with the receiver's memory measured
=========  ====================================================================
"""

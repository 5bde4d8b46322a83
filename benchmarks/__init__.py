"""graphcomms' benchmarks: ``python -m benchmarks`` (``--quick`` for the smoke run,
``--instructions`` to count instructions too). What each row measures, its floor and
how to reproduce it: ``benchmarks/README.md``.

Each comparison puts graphcomms beside a floor (the least any code could do for the
same job) or a peer (Microsoft's ``msgraph-beta-sdk``, from the ``bench`` extra),
runs the variants interleaved in one process run, and reports the median and min-max
of at least five rounds against the target the project holds itself to. The in-process
rows can also be counted in instructions (:mod:`benchmarks._instructions`), which do
not move when the machine is busy. The numbers are for reading, not for asserting: no
test checks a time or a count.

=============  ==============================================================
``ingest``     1. ``client.feed(bytes)`` -> tracker resolved -> awaiting task woken,
               in steady state, vs the orjson and json floors and the SDK
``roundtrip``  2. ``play_prompt`` against a loopback Graph, concurrency 1 and 64,
               vs raw aiohttp and vs the SDK
``action``     2. ``play_prompt``'s client side in process (fake Graph) vs a floor
``webhook``    3. ``NotificationReceiver`` with token validation vs a bare aiohttp
               handler, load from another process
``memory``     4. bytes per pending tracker
``scale``      5. cost per notification with 100,000 pending vs 1,000
``coldstart``  6. import + first decode in a fresh process, vs the SDK
=============  ==============================================================
"""

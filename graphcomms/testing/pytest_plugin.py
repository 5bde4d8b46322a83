"""pytest plugin (registered through the ``pytest11`` entry point): fixtures for testing
a bot against the Graph emulator. Filled in with the emulator."""

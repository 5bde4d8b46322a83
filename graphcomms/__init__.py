"""graphcomms: placeholder, filled in as the layers land."""

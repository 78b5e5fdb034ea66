"""Code shared by every EV Charging Network program: wire formats, domain rules, adapters."""

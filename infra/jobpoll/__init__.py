"""jobpoll development tooling: the local AWS emulation, the demo and the console. Never deployed."""

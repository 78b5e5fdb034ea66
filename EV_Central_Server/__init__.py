"""CENTRAL: the network operator's backend and its web front."""

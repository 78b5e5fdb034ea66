"""CENTRAL's service layer and its edges (sockets, Kafka, REST, console)."""

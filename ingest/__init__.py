"""The door: event formats (Segment, CloudEvents), auth, POST /ingest, transports, Kafka sink."""

"""The event contract: Avro schemas (``avro/*.avsc``, the source of truth for subscribers),
their Python models, and the Confluent-framed Avro codec with its schema-registry client."""

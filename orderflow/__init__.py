"""orderflow: Shopee order activity as Avro events on Kafka, and the consumers that act on them."""

__version__ = "0.1.0"

"""`make chaos`: fault scenarios against the whole pipeline, each judged by the same pass
criteria (``chaos.checks``) and reported with its figures (``chaos.results``); the scenarios
are in ``chaos.scenarios``, the world they run in in ``chaos.world``, and the Kafka cluster
they may kill in ``chaos.kafka_cluster``. See docs/reliability.md."""

-- Run once, when the postgres service initialises its data volume: the schema registry keeps
-- its schemas in a database of its own beside orderflow's (POSTGRES_DB), as in the local stack.
CREATE DATABASE registry;

-- Run once by the postgres image on an empty data directory (docker-compose.yml mounts this file
-- into /docker-entrypoint-initdb.d/). The relay's read model lives in `relay` (migrated by
-- `relay setup`); Apicurio Registry keeps its schemas in `relay_registry`, so schema ids survive
-- restarts.
CREATE DATABASE relay;
CREATE DATABASE relay_registry;

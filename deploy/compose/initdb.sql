-- Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d), as its superuser.
-- The two roles of README "Your own PostgreSQL": the owner migrates, the application role serves.
-- Local placeholder passwords, matching deploy/compose.yaml.
CREATE ROLE gatehouse_owner LOGIN PASSWORD 'owner-local-only';
CREATE ROLE gatehouse_app LOGIN PASSWORD 'app-local-only';
CREATE DATABASE gatehouse OWNER gatehouse_owner;

-- outbox_guard() (017) refuses a move of an outbox row without its journal row (kind outbound, detail.outbox =
-- the row's id, written in the same transaction). Nothing indexed that lookup: its plan walked the outbound rows
-- by journal_kind_seq_idx, every one the journal ever had, at each move (two per delivery), so the outbox slowed
-- as its journal grew (bench/outbox.py: 20,000 rows read per move at the end of 10,000 deliveries). This partial
-- index answers it with the row's own few journal rows, at any size; only outbound rows pay for it.
SET LOCAL lock_timeout = '10s';

CREATE INDEX journal_outbox_idx ON journal ((detail ->> 'outbox'), ts) WHERE kind = 'outbound';
-- The guard's query takes the row id as a parameter: after five calls PL/pgSQL may keep a generic plan, which,
-- without statistics on the new expression (a journal not analyzed yet), goes back to the kind index. A
-- custom plan each call (a few tens of microseconds) always sees the id and takes this index.
ALTER FUNCTION public.outbox_guard() SET plan_cache_mode = force_custom_plan;

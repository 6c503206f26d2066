"""Cluster mode: one run on Postgres, its work items run by workers on any number of machines.

    generate --database-url URL --workers N
        coordinator (this process): records the run in the database, enqueues one job per
        LangGraph thread (procrastinate), starts N local workers, collects finished threads
        into the run directory's store, retries the jobs of workers whose heartbeat stopped.
    apigen-mt worker --database-url URL   (any machine, same domains and configuration)
        takes jobs, runs the same compiled graphs with Postgres checkpoints, so a retried
        job resumes its thread from the last checkpoint.

What a single-process run shares through memory is shared through the database here:
checkpoints (:mod:`.checkpointer`), the dedup index, the budget, the model-answer cache, the
call log and the sampler's coverage counts (:mod:`.shared`). One database holds one run
(:mod:`.database`): the queue and those tables need no run key, and a database of another
run is refused by name. The graphs are the same in both modes.
"""

"""Plain data: jobs and the specs of each job type. No I/O here."""

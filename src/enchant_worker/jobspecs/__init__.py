"""Job specs (torch-free): what each job type's metadata may hold and which rows and files it names."""

from enchant_worker.jobspecs.base import READ, WRITE, JobSpec, Ref, Reference, parse, references
from enchant_worker.jobspecs.catalog import JobType, job_types

__all__ = ["READ", "WRITE", "JobSpec", "JobType", "Ref", "Reference", "job_types", "parse", "references"]

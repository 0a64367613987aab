"""The event pipeline: ``EventSink`` -> bounded queue -> ``BatchWriter`` -> observers.

See ``tgstats.pipeline.sink`` for the lifecycle and ``tgstats.pipeline.writer``
for what a batch does to the database.
"""

from tgstats.pipeline.batch import WriteOutcome
from tgstats.pipeline.recount import rebuild_chat_rollups
from tgstats.pipeline.sink import EventPipeline, PipelineStopped
from tgstats.pipeline.writer import BatchWriter

__all__ = [
    "BatchWriter",
    "EventPipeline",
    "PipelineStopped",
    "WriteOutcome",
    "rebuild_chat_rollups",
]

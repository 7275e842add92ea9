"""Learning tasks trained by the one engine; :data:`TASKS` maps a name to a :class:`~medsift.tasks.base.Task`.

Example:
    >>> from medsift.tasks import TASKS
    >>> sorted(TASKS.names())[:2]
    ['classify', 'multilabel']
"""

from __future__ import annotations

from medsift.registry import Registry
from medsift.tasks.base import LabelTask, Task
from medsift.tasks.classify import ClassifyTask
from medsift.tasks.detect import DetectTask
from medsift.tasks.multilabel import MultiLabelTask
from medsift.tasks.segment import SegmentTask
from medsift.tasks.simclr import SimCLRTask

TASKS: Registry[type[Task]] = Registry("task")
TASKS.register("classify")(ClassifyTask)
TASKS.register("multilabel")(MultiLabelTask)
TASKS.register("simclr")(SimCLRTask)
TASKS.register("detect")(DetectTask)
TASKS.register("segment")(SegmentTask)

__all__ = ["TASKS", "Task", "LabelTask", "ClassifyTask", "MultiLabelTask", "SimCLRTask", "SegmentTask", "DetectTask"]

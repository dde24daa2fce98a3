"""Distill Explorer core library: the science, data, training and storage behind the app.

Everything a notebook user, the CLI or a test needs is re-exported here; the modules behind it are:
temperature (the math), data and images (datasets, splits, uploads), models, teachers (checkpoints and the logits
cache), training (paired runs), teacher_training, store (SQLite runs), jobs (background workers), runs (recording),
explore (explorer computations) and viz (Plotly figures).
"""

from .data import DATASETS, DEFAULT_DATASET, DatasetInfo, DatasetSplits, Split, load_dataset, transfer_indices
from .jobs import JobManager, get_manager
from .models import build_model, count_parameters, inference_seconds_per_example, parse_spec
from .store import RunRecord, RunStore, StoreError
from .teacher_training import TeacherConfig, train_teacher
from .teachers import import_teacher, list_teachers, load_teacher, read_checkpoint, teacher_logits
from .temperature import (
    KDLossParts,
    dark_knowledge_matrix,
    entropy,
    kd_loss,
    kd_loss_parts,
    label_smoothing_targets,
    logit_matching_gradient,
    logit_matching_loss,
    soft_loss_gradient,
    soft_targets,
)
from .training import PairResult, TrainConfig, train_pair, train_seeds
from .versions import __version__

__all__ = [
    "__version__",
    "DATASETS",
    "DEFAULT_DATASET",
    "DatasetInfo",
    "DatasetSplits",
    "JobManager",
    "KDLossParts",
    "PairResult",
    "RunRecord",
    "RunStore",
    "Split",
    "StoreError",
    "TeacherConfig",
    "TrainConfig",
    "build_model",
    "count_parameters",
    "dark_knowledge_matrix",
    "entropy",
    "get_manager",
    "import_teacher",
    "inference_seconds_per_example",
    "kd_loss",
    "kd_loss_parts",
    "label_smoothing_targets",
    "list_teachers",
    "load_dataset",
    "load_teacher",
    "logit_matching_gradient",
    "logit_matching_loss",
    "parse_spec",
    "read_checkpoint",
    "soft_loss_gradient",
    "soft_targets",
    "teacher_logits",
    "train_pair",
    "train_seeds",
    "train_teacher",
    "transfer_indices",
]

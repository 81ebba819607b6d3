"""Where each copy's log lives on disk, and the CloudWatch Logs group and stream it is read as.

A copy of an endpoint variant logs to ``<logs>/<endpoint>/<variant>/i-<copy>.log``, read as
group ``/aws/sagemaker/Endpoints/<endpoint>``, stream ``<variant>/i-<copy>`` (SageMaker's
``<VariantName>/<instance-id>``: in smemu a variant's copy is its instance). A copy of an
inference component logs to ``<logs>/_components/<component>/<variant>/i-<copy>.log``, read as
group ``/aws/sagemaker/InferenceComponents/<component>``, stream ``<variant>/i-<copy>``. An
Inference Recommender job logs to ``<logs>/_recommendations/<job>/execution.log``, read as group
``/aws/sagemaker/InferenceRecommendationsJobs``, stream ``<job>/execution``. (``_`` cannot begin
an endpoint name, so these never meet.)
"""
from __future__ import annotations

from pathlib import Path

ENDPOINT_GROUP = "/aws/sagemaker/Endpoints/"
COMPONENT_GROUP = "/aws/sagemaker/InferenceComponents/"
COMPONENTS_DIR = "_components"
# Inference Recommender jobs: one group, a stream ``<job>/execution`` per job (as SageMaker names them).
RECOMMENDER_GROUP = "/aws/sagemaker/InferenceRecommendationsJobs"
RECOMMENDER_DIR = "_recommendations"


def stream_name(variant: str, copy_id: str) -> str:
    return f"{variant}/i-{copy_id}"


def group_name(endpoint: str, component: str | None) -> str:
    return COMPONENT_GROUP + component if component else ENDPOINT_GROUP + endpoint


def copy_log_path(logs_dir: Path, endpoint: str, variant: str, component: str | None, copy_id: str) -> Path:
    folder = logs_dir / COMPONENTS_DIR / component if component else logs_dir / endpoint
    return folder / variant / f"i-{copy_id}.log"


def job_log_path(logs_dir: Path, job: str) -> Path:
    return logs_dir / RECOMMENDER_DIR / job / "execution.log"


def group_folder(logs_dir: Path, group: str) -> Path | None:
    """The folder that holds a log group's streams (None for a name that is not one of smemu's groups)."""
    if group == RECOMMENDER_GROUP:
        return logs_dir / RECOMMENDER_DIR
    for prefix, base in ((ENDPOINT_GROUP, logs_dir), (COMPONENT_GROUP, logs_dir / COMPONENTS_DIR)):
        if group.startswith(prefix):
            name = group[len(prefix):]
            if name and "/" not in name and not name.startswith((".", "_")):
                return base / name
    return None


def groups(logs_dir: Path) -> list[tuple[str, Path]]:
    """(group name, folder) of every log group on disk."""
    found = []
    if logs_dir.is_dir():
        for folder in sorted(logs_dir.iterdir()):
            if folder.is_dir() and folder.name not in (COMPONENTS_DIR, RECOMMENDER_DIR):
                found.append((ENDPOINT_GROUP + folder.name, folder))
    if (logs_dir / RECOMMENDER_DIR).is_dir():
        found.append((RECOMMENDER_GROUP, logs_dir / RECOMMENDER_DIR))
    components = logs_dir / COMPONENTS_DIR
    if components.is_dir():
        for folder in sorted(components.iterdir()):
            if folder.is_dir():
                found.append((COMPONENT_GROUP + folder.name, folder))
    return found


def streams(folder: Path) -> list[tuple[str, Path]]:
    """(stream name, file) of every stream of a group's folder."""
    return sorted((f"{path.parent.name}/{path.stem}", path) for path in folder.glob("*/*.log"))

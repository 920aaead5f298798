"""Run directories: where they live (:mod:`.location`), their format (:mod:`.layout`) and how one is
written safely (:mod:`.rundir`). Below training, evaluation and serving; imports only
:mod:`fleet.errors`, pandas and pyarrow."""

from fleet.store.layout import REQUIRED_FILES, RunLayout
from fleet.store.location import Storage, display_location, is_uri, join_location, location_name, require_local
from fleet.store.rundir import RunDirectory, UnitStore

__all__ = ["REQUIRED_FILES", "RunDirectory", "RunLayout", "Storage", "UnitStore", "display_location", "is_uri",
           "join_location", "location_name", "require_local"]

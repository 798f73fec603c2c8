"""The cloud side of training: the Flower ServerApp `tierwise federate` submits with `flwr run`.

The SuperLink starts it in its own `flwr-serverapp` process for each run. It reads the run
settings named in the run config, drives the rounds (`rounds.run_rounds`) through a metered
grid, and reports through the run directory's event log; a run that fails closed ends with
a `failed` event carrying the reason rather than a traceback.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from tierwise.federate.metered_grid import MeteredGrid
from tierwise.federate.polling import tune_serverapp
from tierwise.federate.progress import PROGRESS_FILE, ProgressLog
from tierwise.federate.rounds import RoundFailedError, run_rounds
from tierwise.federate.settings import RunSettings

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    settings = RunSettings.load(Path(str(context.run_config["settings"])))
    run_dir = Path(settings.run_dir)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    tune_serverapp()
    progress = ProgressLog(run_dir / PROGRESS_FILE)
    capture = run_dir / "capture" if settings.capture_messages else None
    try:
        run_rounds(MeteredGrid(grid, capture_dir=capture), context, settings, progress)
    except RoundFailedError as exc:
        progress.write("failed", reason=str(exc))
    except Exception as exc:  # anything else is a bug: keep the trace for the report
        (run_dir / "serverapp-error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        progress.write("failed", reason=f"the cloud side crashed: {type(exc).__name__}: {exc}")
